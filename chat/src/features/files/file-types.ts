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

/** Valid UTF-8 without NUL or other binary control characters (tab, newline, carriage return and form feed allowed). */
function isText(data: Buffer): boolean {
  try {
    const decoded = new TextDecoder('utf-8', { fatal: true }).decode(data);
    for (let i = 0; i < decoded.length; i++) {
      const code = decoded.charCodeAt(i);
      if ((code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0c && code !== 0x0d) || code === 0x7f) return false;
    }
    return true;
  } catch {
    return false;
  }
}

export function detectType(data: Buffer, fileName: string): DetectedType | undefined {
  if (data.length === 0) return undefined;
  if (startsWith(data, [0x25, 0x50, 0x44, 0x46, 0x2d])) return { contentType: 'application/pdf', text: false };
  if (startsWith(data, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { contentType: 'image/png', text: false };
  if (startsWith(data, [0xff, 0xd8, 0xff])) return { contentType: 'image/jpeg', text: false };
  if (startsWith(data, [0x47, 0x49, 0x46, 0x38]) && (data[4] === 0x37 || data[4] === 0x39) && data[5] === 0x61)
    return { contentType: 'image/gif', text: false };
  if (startsWith(data, [0x52, 0x49, 0x46, 0x46]) && startsWith(data, [0x57, 0x45, 0x42, 0x50], 8)) return { contentType: 'image/webp', text: false };
  if (isText(data)) {
    const extension = fileName.toLowerCase().split('.').pop() ?? '';
    return { contentType: TEXT_TYPES[extension] ?? 'text/plain', text: true };
  }
  return undefined;
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
