import type { IncomingMessage } from 'node:http';

/**
 * Whether the request carries a body. Unlike type-is, an explicit `Content-Length: 0` counts as no body: an empty
 * POST should fail validation (422 "question is required"), not content negotiation.
 */
export function hasBody(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = Number(req.headers['content-length']);
  return Number.isFinite(length) && length > 0;
}

/** `application/json`, with any parameters (`; charset=utf-8`); the media type is case-insensitive. */
export function isJsonContentType(contentType: string | undefined): boolean {
  const mediaType = contentType?.split(';', 1)[0].trim().toLowerCase();
  return mediaType === 'application/json';
}
