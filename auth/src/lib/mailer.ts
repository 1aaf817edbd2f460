import { randomUUID } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer from 'nodemailer';

export interface Mail {
  to: string;
  subject: string;
  text: string;
  meta: { kind: 'verify-email' | 'reset-password'; token: string };
}

export interface Mailer {
  send(mail: Mail): Promise<void>;
}

/**
 * DESIGN section 10: nodemailer over SMTP_URL when set; otherwise each mail is a JSON file in MAIL_DIR
 * (`to`, `subject`, `text`, `meta: {kind, token}`) that dev tools and the e2e suite read.
 */
export function createMailer(options: { smtpUrl?: string; from: string; mailDir: string }): Mailer {
  if (options.smtpUrl) {
    const transport = nodemailer.createTransport(options.smtpUrl);
    return {
      async send(mail) {
        await transport.sendMail({ from: options.from, to: mail.to, subject: mail.subject, text: mail.text });
      },
    };
  }
  return {
    async send(mail) {
      await mkdir(options.mailDir, { recursive: true, mode: 0o700 });
      const name = `${new Date().toISOString().replaceAll(':', '-')}-${mail.meta.kind}-${randomUUID()}.json`;
      const body = { from: options.from, ...mail, sentAt: new Date().toISOString() };
      // written under a temporary name, then renamed: a reader never sees half a file
      const path = join(options.mailDir, name);
      await writeFile(`${path}.tmp`, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
      await rename(`${path}.tmp`, path);
    },
  };
}
