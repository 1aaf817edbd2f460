/** The upload allowlist, decided by content (magic bytes), never by the client's claimed type. */
export interface DetectedType {
  contentType: string;
  /** text files can be attached to a message */
  text: boolean;
}

const startsWith = (data: Buffer, bytes: number[], offset = 0) => bytes.every((byte, i) => data[offset + i] === byte);

const TEXT_TYPES: Record<string, string> = {
  md: 'text/markdown',
  markdown: 'text/markdown',
  csv: 'text/csv',
  json: 'application/json',
};

/** Binary control characters (tab, newline, carriage return and form feed are text). */
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if ((code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0c && code !== 0x0d) || code === 0x7f) return true;
  }
  return false;
}

/** The magic-byte types; needs the first 12 bytes. */
function binaryType(head: Buffer): DetectedType | undefined {
  if (startsWith(head, [0x25, 0x50, 0x44, 0x46, 0x2d])) return { contentType: 'application/pdf', text: false };
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { contentType: 'image/png', text: false };
  if (startsWith(head, [0xff, 0xd8, 0xff])) return { contentType: 'image/jpeg', text: false };
  if (startsWith(head, [0x47, 0x49, 0x46, 0x38]) && (head[4] === 0x37 || head[4] === 0x39) && head[5] === 0x61)
    return { contentType: 'image/gif', text: false };
  if (startsWith(head, [0x52, 0x49, 0x46, 0x46]) && startsWith(head, [0x57, 0x45, 0x42, 0x50], 8)) return { contentType: 'image/webp', text: false };
  return undefined;
}

const HEAD_BYTES = 12;

/**
 * Decides the type of a file fed piece by piece, without holding it: the first bytes for the magic numbers,
 * a streaming UTF-8 check for text. `refused` turns true as soon as no allowed type can match any more.
 */
export class TypeSniffer {
  #head = Buffer.alloc(0);
  #size = 0;
  #decoder = new TextDecoder('utf-8', { fatal: true });
  #textOk = true;

  feed(chunk: Buffer): void {
    if (this.#head.length < HEAD_BYTES) this.#head = Buffer.concat([this.#head, chunk.subarray(0, HEAD_BYTES - this.#head.length)]);
    this.#size += chunk.length;
    if (!this.#textOk) return;
    try {
      if (hasControl(this.#decoder.decode(chunk, { stream: true }))) this.#textOk = false;
    } catch {
      this.#textOk = false;
    }
  }

  /** no allowed type can match: not text, and the head is known and is no allowed binary type */
  get refused(): boolean {
    return !this.#textOk && this.#head.length >= HEAD_BYTES && binaryType(this.#head) === undefined;
  }

  result(fileName: string): DetectedType | undefined {
    if (this.#size === 0) return undefined;
    const binary = binaryType(this.#head);
    if (binary) return binary;
    if (this.#textOk) {
      try {
        this.#decoder.decode();
      } catch {
        this.#textOk = false;
      }
    }
    if (!this.#textOk) return undefined;
    const extension = fileName.toLowerCase().split('.').pop() ?? '';
    return { contentType: TEXT_TYPES[extension] ?? 'text/plain', text: true };
  }
}

export function detectType(data: Buffer, fileName: string): DetectedType | undefined {
  const sniffer = new TypeSniffer();
  sniffer.feed(data);
  return sniffer.result(fileName);
}

/** A name safe to store and to send back in Content-Disposition: no path, no control or shell-special characters. */
export function safeFileName(name: string | undefined): string {
  const base = (name ?? '').split(/[\\/]/).pop() ?? '';
  const cleaned = base
    .normalize('NFC')
    .split('')
    .filter((ch) => ch.charCodeAt(0) >= 0x20 && ch.charCodeAt(0) !== 0x7f && !'"\'`<>|:*?;$&%{}[]'.includes(ch))
    .join('')
    .replace(/\s+/g, ' ')
    .replace(/^[.\s]+/, '')
    .trim()
    .slice(0, 200);
  return cleaned.length > 0 ? cleaned : 'file';
}
