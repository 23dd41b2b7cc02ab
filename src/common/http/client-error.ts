import { HttpException } from '@nestjs/common';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { describeError, problemType } from '../errors/error-table';

/** Parser errors Node raises before any middleware runs, and the status each deserves. */
const STATUS_BY_CODE: Record<string, number> = {
  HPE_HEADER_OVERFLOW: 431,
  HPE_REQUEST_TIMEOUT: 408,
};

const DETAIL_BY_STATUS: Record<number, string> = {
  431: 'The request line or headers are larger than the server accepts (16 KiB); send long questions with POST.',
  408: 'The request was not received in time.',
  400: 'The request is not valid HTTP.',
};

/**
 * The HTTP server's `clientError` handler: Node refuses some requests in its parser, before the app sees them (a
 * request line or header block over --max-http-header-size, malformed HTTP, a header timeout), and by default
 * answers with a bare status line. This answers them in problem+json like every other 4xx. Writes straight to the
 * socket, as there is no request or response object at this point.
 */
export function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (error.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const status = STATUS_BY_CODE[error.code ?? ''] ?? 400;
  const { title, code, detail } = describeError(new HttpException(DETAIL_BY_STATUS[status], status));
  const body = JSON.stringify({ type: problemType(code), title, status, detail, code });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
      'Content-Type: application/problem+json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}
