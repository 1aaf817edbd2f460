/**
 * How a client request's body is delimited (DESIGN section 10), read from the raw header lines rather than
 * from node's joined `req.headers`, so repeated lines cannot hide behind a join. node's parser (strict mode)
 * already refuses CL with TE, repeated or non-numeric Content-Length, bad chunk sizes and bare LF; it still
 * accepts `Chunked`, `gzip, chunked` and two TE lines, which the gateway refuses here: the only transfer
 * coding it takes is exactly one `Transfer-Encoding: chunked`.
 */
export type BodyFraming = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' };

export type FramingCheck = { ok: true; framing: BodyFraming } | { ok: false; reason: string };

const NO_BODY: FramingCheck = { ok: true, framing: { kind: 'none' } };
const CHUNKED: FramingCheck = { ok: true, framing: { kind: 'chunked' } };
const DIGITS = /^\d{1,15}$/;

export function requestFraming(rawHeaders: string[]): FramingCheck {
  let length: string | undefined;
  let coding: string | undefined;
  let lengthLines = 0;
  let codingLines = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    // length first: most names are neither, and this keeps the per-request cost to a comparison each
    if (name.length === 14 && name.toLowerCase() === 'content-length') {
      lengthLines++;
      length = rawHeaders[i + 1];
    } else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      codingLines++;
      coding = rawHeaders[i + 1];
    }
  }
  if (lengthLines === 0 && codingLines === 0) return NO_BODY;
  if (lengthLines > 0 && codingLines > 0) return { ok: false, reason: 'Content-Length together with Transfer-Encoding' };
  if (lengthLines > 1) return { ok: false, reason: 'repeated Content-Length' };
  if (codingLines > 1) return { ok: false, reason: 'repeated Transfer-Encoding' };
  if (coding !== undefined) return coding === 'chunked' ? CHUNKED : { ok: false, reason: 'Transfer-Encoding other than chunked' };
  if (length === undefined || !DIGITS.test(length)) return { ok: false, reason: 'malformed Content-Length' };
  const declared = Number(length);
  return declared === 0 ? NO_BODY : { ok: true, framing: { kind: 'length', length: declared } };
}
