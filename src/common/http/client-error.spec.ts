import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerClientError } from './client-error';

describe('answerClientError', () => {
  let server: Server;
  let port: number;

  beforeAll(async () => {
    server = createServer((_req, res) => res.end('ok')).on('clientError', answerClientError);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  function get(path: string): Promise<{ status?: number; type?: string; body: string }> {
    return new Promise((resolve, reject) => {
      request({ host: '127.0.0.1', port, path }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body }));
      })
        .on('error', reject)
        .end();
    });
  }

  it('answers a request line over the header limit with a 431 problem, not a bare status line', async () => {
    const reply = await get(`/predict/stream?question=${'x'.repeat(20_000)}`);
    expect(reply.status).toBe(431);
    expect(reply.type).toBe('application/problem+json');
    expect(JSON.parse(reply.body)).toEqual({
      type: 'https://errors.dspy-nest-api.dev/request_header_fields_too_large',
      title: 'Request Header Fields Too Large',
      status: 431,
      detail: expect.stringContaining('POST'),
      code: 'request_header_fields_too_large',
    });
  });

  it('leaves ordinary requests alone', async () => {
    expect(await get('/')).toMatchObject({ status: 200, body: 'ok' });
  });
});
