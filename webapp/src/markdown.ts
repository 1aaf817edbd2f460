// Model output is untrusted: markdown becomes HTML with every raw HTML tag, image and link to a non-web URL kept
// as visible text (escaped), then DOMPurify keeps only the tags and attributes of plain formatted text. The
// page's CSP (no inline script, no foreign origin) is the last layer, not the first.
import DOMPurify from 'dompurify';
import { Marked } from 'marked';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (char) => ESCAPES[char] as string);

/** http(s) and mailto links only; anything else (javascript:, data:, vbscript:, relative tricks) stays text */
function isSafeHref(href: string): boolean {
  try {
    const url = new URL(href, 'https://invalid.example/');
    return (url.protocol === 'https:' || url.protocol === 'http:' || url.protocol === 'mailto:') && /^(https?:|mailto:)/i.test(href.trim());
  } catch {
    return false;
  }
}

const markdown = new Marked({
  gfm: true,
  breaks: true,
  async: false,
  renderer: {
    html: (token) => escapeHtml(token.text),
    image: (token) => escapeHtml(token.raw),
    link(token) {
      if (!isSafeHref(token.href)) return escapeHtml(token.raw);
      const title = token.title ? ` title="${escapeHtml(token.title)}"` : '';
      return `<a href="${escapeHtml(token.href)}"${title}>${this.parser.parseInline(token.tokens)}</a>`;
    },
  },
});

const ALLOWED_TAGS = [
  'p',
  'br',
  'hr',
  'strong',
  'em',
  'del',
  'code',
  'pre',
  'blockquote',
  'ul',
  'ol',
  'li',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
  'a',
  'table',
  'thead',
  'tbody',
  'tr',
  'th',
  'td',
];

let hooked = false;
function purifier(): typeof DOMPurify {
  if (!hooked) {
    DOMPurify.addHook('afterSanitizeAttributes', (node) => {
      if (node.tagName === 'A') {
        node.setAttribute('rel', 'noopener noreferrer nofollow');
        node.setAttribute('target', '_blank');
      }
    });
    hooked = true;
  }
  return DOMPurify;
}

/** Sanitized HTML for a model's (or anyone's) markdown text. */
export function renderMarkdown(text: string): string {
  const html = markdown.parse(text, { async: false });
  return purifier().sanitize(html, {
    ALLOWED_TAGS,
    ALLOWED_ATTR: ['href', 'title', 'start', 'rel', 'target'],
    ALLOW_DATA_ATTR: false,
    ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
  });
}
