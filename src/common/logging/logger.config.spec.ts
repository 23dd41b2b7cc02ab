import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pinoHttp, type Options } from 'pino-http';
import { genReqId, loggerModuleOptions, REQUEST_ID_HEADER, requestIdOf } from './logger.config';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function fakeRequest(headers: Record<string, string> = {}, url = '/predict') {
  return { headers, url } as unknown as IncomingMessage;
}

function fakeResponse(headersSent = false) {
  const headers: Record<string, string> = {};
  const setHeader = jest.fn((name: string, value: string) => {
    headers[name] = value;
  });
  const res = { headersSent, setHeader } as unknown as ServerResponse;
  return { res, headers, setHeader };
}

describe('genReqId', () => {
  it.each(['abc-123', 'req.42:a_b-C', 'x'.repeat(128)])('keeps a well-formed incoming id: %s', (incoming) => {
    const { res, headers } = fakeResponse();
    expect(genReqId(fakeRequest({ 'x-request-id': incoming }), res)).toBe(incoming);
    expect(headers[REQUEST_ID_HEADER]).toBe(incoming);
  });

  it.each(['', 'x'.repeat(129), 'has space', 'new\nline', 'a,b', '<script>', 'ünïcode'])(
    'replaces a malformed incoming id with a UUID: %j',
    (incoming) => {
      const { res, headers } = fakeResponse();
      const id = genReqId(fakeRequest({ 'x-request-id': incoming }), res);
      expect(id).toMatch(UUID);
      expect(headers[REQUEST_ID_HEADER]).toBe(id);
    },
  );

  it('generates a fresh UUID per request without an incoming id', () => {
    const a = genReqId(fakeRequest(), fakeResponse().res);
    const b = genReqId(fakeRequest(), fakeResponse().res);
    expect(a).toMatch(UUID);
    expect(b).toMatch(UUID);
    expect(a).not.toBe(b);
  });

  it('does not touch headers that were already sent', () => {
    const { res, setHeader } = fakeResponse(true);
    expect(genReqId(fakeRequest(), res)).toMatch(UUID);
    expect(setHeader).not.toHaveBeenCalled();
  });
});

describe('requestIdOf', () => {
  it('returns the id pino-http assigned', () => {
    const req = Object.assign(fakeRequest(), { id: 'assigned-1' });
    expect(requestIdOf(req)).toBe('assigned-1');
  });

  it('assigns one (and sets the header) when pino-http has not run yet, then keeps it', () => {
    const req = fakeRequest({ 'x-request-id': 'from-client' });
    const { res, headers } = fakeResponse();
    expect(requestIdOf(req, res)).toBe('from-client');
    expect(headers[REQUEST_ID_HEADER]).toBe('from-client');

    const fresh = fakeRequest();
    const first = requestIdOf(fresh);
    expect(first).toMatch(UUID);
    expect(requestIdOf(fresh)).toBe(first);
  });
});

describe('loggerModuleOptions', () => {
  const optionsOf = (logPrompts = false): Options => {
    const params = loggerModuleOptions({ logLevel: 'debug', logPrompts });
    return params.pinoHttp as Options;
  };

  it('sets the level and the request id generator', () => {
    const options = optionsOf();
    expect(options.level).toBe('debug');
    expect(options.genReqId).toBe(genReqId);
  });

  it.each([
    ['/health', true],
    ['/health/live', true],
    ['/health/ready?x=1', true],
    ['/metrics', true],
    ['/metrics/prometheus', true],
    ['/docs', true],
    ['/docs-json', true],
    ['/predict', false],
    ['/predict/stream?question=health', false],
    ['/batch', false],
  ])('auto-logging ignores %s: %s', (url, ignored) => {
    const { autoLogging } = optionsOf();
    const ignore = (autoLogging as { ignore: (req: IncomingMessage) => boolean }).ignore;
    expect(ignore(fakeRequest({}, url))).toBe(ignored);
  });

  it('logs server errors as error, client errors as warn, the rest as info', () => {
    const level = optionsOf().customLogLevel!;
    const res = (statusCode: number) => ({ statusCode }) as ServerResponse;
    expect(level(fakeRequest(), res(200), undefined)).toBe('info');
    expect(level(fakeRequest(), res(422), undefined)).toBe('warn');
    expect(level(fakeRequest(), res(502), undefined)).toBe('error');
    expect(level(fakeRequest(), res(200), new Error('x'))).toBe('error');
  });

  it('passes a destination stream through for tests', () => {
    const destination = new Writable({ write: (_chunk, _enc, done) => done() });
    const params = loggerModuleOptions({ logLevel: 'info', logPrompts: false }, destination);
    expect(Array.isArray(params.pinoHttp)).toBe(true);
    expect((params.pinoHttp as [Options, Writable])[1]).toBe(destination);
  });

  describe('through pino-http on a real server', () => {
    let server: Server;
    let lines: Record<string, any>[];
    let baseUrl: string;

    async function start(logPrompts: boolean) {
      lines = [];
      const destination = new Writable({
        write(chunk: Buffer, _enc, done) {
          for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
          done();
        },
      });
      const [options, stream] = loggerModuleOptions({ logLevel: 'info', logPrompts }, destination)
        .pinoHttp as [Options, Writable];
      const logger = pinoHttp(options, stream);
      server = createServer((req: IncomingMessage, res: ServerResponse) => {
        logger(req, res);
        req.log.info(
          { apiKey: 'sk-top', lm: { api_key: 'sk-nested' }, cfg: { lm: { apiKey: 'sk-deep' } } },
          'hello',
        );
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          res.setHeader('set-cookie', 'session=abc');
          res.end(body ? 'got it' : 'ok');
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    }

    afterEach(async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    async function waitForCompletion() {
      for (let i = 0; i < 50 && !lines.some((l) => l.msg === 'request completed'); i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }

    it('writes JSON lines with request_id, redacts secrets, and logs no headers, bodies or query', async () => {
      await start(false);
      const response = await fetch(`${baseUrl}/predict/stream?question=my+secret+prompt`, {
        method: 'POST',
        headers: {
          authorization: 'Bearer sk-auth',
          'x-api-key': 'sk-header',
          cookie: 'session=abc',
          'content-type': 'application/json',
          'x-request-id': 'client-id-1',
        },
        body: JSON.stringify({ question: 'my secret prompt' }),
      });
      expect(response.headers.get('x-request-id')).toBe('client-id-1');
      await waitForCompletion();

      const text = JSON.stringify(lines);
      for (const secret of [
        'sk-top',
        'sk-nested',
        'sk-deep',
        'sk-auth',
        'sk-header',
        'session=abc',
        'my secret prompt',
        'my+secret+prompt',
      ]) {
        expect(text).not.toContain(secret);
      }

      const hello = lines.find((l) => l.msg === 'hello')!;
      expect(hello.request_id).toBe('client-id-1');
      expect(hello.level).toBe('info');
      expect(hello.apiKey).toBe('[Redacted]');
      expect(hello.lm.api_key).toBe('[Redacted]');
      expect(hello.cfg.lm.apiKey).toBe('[Redacted]');
      expect(typeof hello.time).toBe('string');

      const completed = lines.find((l) => l.msg === 'request completed')!;
      expect(completed.req).toEqual({
        id: 'client-id-1',
        method: 'POST',
        url: '/predict/stream',
        remoteAddress: '127.0.0.1',
      });
      expect(completed.res).toEqual({ statusCode: 200 });
      expect(completed.context).toBe('HTTP');
    });

    it('keeps the query string when prompts may be logged', async () => {
      await start(true);
      await fetch(`${baseUrl}/predict/stream?question=hi`);
      await waitForCompletion();
      const completed = lines.find((l) => l.msg === 'request completed')!;
      expect(completed.req.url).toBe('/predict/stream?question=hi');
    });

    it('does not log probe traffic', async () => {
      await start(false);
      await fetch(`${baseUrl}/health/live`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(lines.some((l) => l.msg === 'request completed')).toBe(false);
      // App lines logged while handling it still carry the id.
      expect(lines.find((l) => l.msg === 'hello')?.request_id).toMatch(/^[0-9a-f-]{36}$/);
    });
  });
});
