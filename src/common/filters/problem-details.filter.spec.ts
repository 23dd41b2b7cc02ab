import {
  BadRequestException,
  Body,
  Controller,
  Get,
  INestApplication,
  Module,
  NotFoundException,
  Post,
  RequestMethod,
  Res,
  ServiceUnavailableException,
  type ArgumentsHost,
  type MiddlewareConsumer,
  type NestModule,
} from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import { IsString, Length } from 'class-validator';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Logger, LoggerModule, PinoLogger } from 'nestjs-pino';
import { Writable } from 'node:stream';
import request from 'supertest';
import { AdapterParseError, LMAuthError, LMRateLimitError, LMServerError } from '../../dspy';
import { RequestValidationError, ServiceUnavailableError } from '../errors/service-errors';
import { JsonContentTypeMiddleware } from '../guards/json-content-type.middleware';
import { loggerModuleOptions } from '../logging/logger.config';
import { createValidationPipe } from '../pipes/validation.pipe';
import { ProblemDetailsFilter } from './problem-details.filter';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function fakeLogger() {
  return { setContext: jest.fn(), error: jest.fn(), warn: jest.fn(), debug: jest.fn(), info: jest.fn() };
}

type FakeLogger = ReturnType<typeof fakeLogger>;

function fakeRequest(
  overrides: Partial<Record<'id' | 'body' | 'log', unknown>> & { headers?: Record<string, string> } = {},
) {
  return { headers: {}, id: 'req-1', log: {}, ...overrides } as unknown as IncomingMessage;
}

function fakeResponse(headersSent = false) {
  const headers: Record<string, string> = {};
  const res = {
    headersSent,
    statusCode: 200,
    setHeader: jest.fn((name: string, value: string) => {
      headers[name.toLowerCase()] = value;
    }),
    end: jest.fn(),
  };
  const body = () => JSON.parse(res.end.mock.calls[0][0] as string) as Record<string, unknown>;
  return { res, headers, body };
}

function hostFor(req: IncomingMessage, res: unknown): ArgumentsHost {
  return {
    switchToHttp: () => ({ getRequest: () => req, getResponse: () => res, getNext: () => undefined }),
    getType: () => 'http',
  } as unknown as ArgumentsHost;
}

describe('ProblemDetailsFilter', () => {
  let logger: FakeLogger;
  let filter: ProblemDetailsFilter;

  beforeEach(() => {
    logger = fakeLogger();
    filter = new ProblemDetailsFilter(logger as unknown as PinoLogger);
  });

  it('names its log context', () => {
    expect(logger.setContext).toHaveBeenCalledWith('ProblemDetailsFilter');
  });

  it('writes an upstream rate limit as problem+json with Retry-After', () => {
    const { res, headers, body } = fakeResponse();
    filter.catch(
      new LMRateLimitError('Rate limit reached for org-123', { retryAfter: 2.5 }),
      hostFor(fakeRequest(), res),
    );

    expect(res.statusCode).toBe(429);
    expect(headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(headers['retry-after']).toBe('3');
    expect(body()).toEqual({
      type: 'https://errors.dspy-nest-api.dev/lm_rate_limited',
      title: 'Upstream rate limit',
      status: 429,
      detail: 'The language model provider rate-limited the request; retry after 3 s.',
      code: 'lm_rate_limited',
      request_id: 'req-1',
    });
    expect(logger.warn).toHaveBeenCalledWith(
      expect.objectContaining({ code: 'lm_rate_limited', status: 429 }),
      'Request failed',
    );
  });

  it('sets no Retry-After where the table gives none', () => {
    const { res, headers } = fakeResponse();
    filter.catch(new LMServerError('upstream 500'), hostFor(fakeRequest(), res));
    expect(res.statusCode).toBe(502);
    expect(headers['retry-after']).toBeUndefined();
  });

  it('answers an unknown error with a generic 500 and logs it, stack included, at error level', () => {
    const { res, body } = fakeResponse();
    const error = new Error('connect to postgres://admin:hunter2@db failed');
    filter.catch(error, hostFor(fakeRequest(), res));

    expect(res.statusCode).toBe(500);
    expect(body()).toEqual({
      type: 'https://errors.dspy-nest-api.dev/internal_error',
      title: 'Internal Server Error',
      status: 500,
      detail: 'Internal server error',
      code: 'internal_error',
      request_id: 'req-1',
    });
    expect(res.end.mock.calls[0][0]).not.toContain('hunter2');
    expect(res.end.mock.calls[0][0]).not.toContain('at ');
    expect(logger.error).toHaveBeenCalledWith(
      expect.objectContaining({ err: error, code: 'internal_error', status: 500 }),
      'Unhandled error',
    );
    expect(logger.warn).not.toHaveBeenCalled();
  });

  it('keeps the configured keys out of a logged upstream message that quotes them', () => {
    const upstreamKey = 'local-upstream-key-42';
    filter = new ProblemDetailsFilter(
      logger as unknown as PinoLogger,
      { apiKey: upstreamKey } as never,
      { apiKeys: ['client-key-a', 'client-key-b'] } as never,
    );
    const { res, body } = fakeResponse();
    filter.catch(
      new LMAuthError(`Incorrect API key provided: ${upstreamKey} (also client-key-b, Bearer abc.def)`),
      hostFor(fakeRequest(), res),
    );

    expect(body()).toMatchObject({ status: 502, code: 'lm_auth_failed' });
    const logged = JSON.stringify(logger.warn.mock.calls);
    expect(logged).toContain('Incorrect API key provided: [Redacted] (also [Redacted], Bearer [Redacted])');
    for (const secret of [upstreamKey, 'client-key-b', 'abc.def']) expect(logged).not.toContain(secret);
  });

  it('does not write once headers are sent (an SSE stream reports its own error), but logs', () => {
    const { res } = fakeResponse(true);
    const error = new Error('late failure');
    filter.catch(error, hostFor(fakeRequest(), res));

    expect(res.end).not.toHaveBeenCalled();
    expect(res.setHeader).not.toHaveBeenCalled();
    expect(res.statusCode).toBe(200);
    expect(logger.error).toHaveBeenCalledWith(
      expect.objectContaining({ err: error, headers_sent: true }),
      'Unhandled error',
    );
  });

  it('lists the offending fields of a validation failure', () => {
    const { res, body } = fakeResponse();
    const errors = [{ field: 'question', message: 'question must be a string' }];
    filter.catch(new RequestValidationError(errors), hostFor(fakeRequest(), res));

    expect(res.statusCode).toBe(422);
    expect(body()).toMatchObject({ status: 422, code: 'validation_failed', errors });
    expect(logger.debug).toHaveBeenCalledWith(
      expect.objectContaining({ code: 'validation_failed' }),
      'Request rejected',
    );
  });

  it("recognises Nest's rendering of body-parser's JSON SyntaxError by the unparsed JSON body", () => {
    const req = fakeRequest({
      body: undefined,
      headers: { 'content-type': 'application/json', 'content-length': '5' },
    });
    const { res, body } = fakeResponse();
    filter.catch(new BadRequestException('Unexpected token } in JSON at position 4'), hostFor(req, res));

    expect(res.statusCode).toBe(400);
    expect(body()).toMatchObject({ code: 'invalid_json', detail: 'The request body is not valid JSON.' });
  });

  it('leaves other BadRequestExceptions as they are', () => {
    const req = fakeRequest({
      body: { question: 'x' },
      headers: { 'content-type': 'application/json', 'content-length': '16' },
    });
    const { res, body } = fakeResponse();
    filter.catch(new BadRequestException('id must be numeric'), hostFor(req, res));

    expect(body()).toMatchObject({ status: 400, code: 'bad_request', detail: 'id must be numeric' });
  });

  it('gives a request that never reached pino-http an id, in the body, the header and the log line', () => {
    const req = fakeRequest({ id: undefined, log: undefined, headers: { 'x-request-id': 'client-7' } });
    const { res, headers, body } = fakeResponse();
    filter.catch(new NotFoundException('Cannot GET /x'), hostFor(req, res));

    expect(body().request_id).toBe('client-7');
    expect(headers['x-request-id']).toBe('client-7');
    expect(logger.debug).toHaveBeenCalledWith(
      expect.objectContaining({ request_id: 'client-7' }),
      'Request rejected',
    );
  });

  it('leaves the request id to the request-bound logger when pino-http ran', () => {
    const { res } = fakeResponse();
    filter.catch(new NotFoundException(), hostFor(fakeRequest(), res));
    expect(logger.debug.mock.calls[0][0]).not.toHaveProperty('request_id');
  });

  it('generates a UUID when the client sent no usable id', () => {
    const req = fakeRequest({ id: undefined, log: undefined, headers: { 'x-request-id': 'bad id\r\n' } });
    const { res, body } = fakeResponse();
    filter.catch(new NotFoundException(), hostFor(req, res));
    expect(body().request_id).toMatch(UUID);
  });

  it('adds Terminus health details as extension members', () => {
    const { res, body } = fakeResponse();
    const result = {
      status: 'error',
      info: {},
      error: { lm: { status: 'down' } },
      details: { lm: { status: 'down' } },
    };
    filter.catch(new ServiceUnavailableException(result), hostFor(fakeRequest(), res));

    expect(res.statusCode).toBe(503);
    expect(body()).toMatchObject({
      status: 503,
      code: 'service_unavailable',
      detail: 'Health checks failed: lm.',
      error: result.error,
      details: result.details,
    });
  });

  it('logs what an upstream failure was, but never the LM output an AdapterParseError carries', () => {
    const { res } = fakeResponse();
    const error = new AdapterParseError({
      adapterName: 'JSONAdapter',
      expectedFields: ['answer'],
      lmResponse: 'PRIVATE ANSWER TEXT',
    });
    filter.catch(error, hostFor(fakeRequest(), res));

    expect(res.statusCode).toBe(502);
    const [fields] = logger.warn.mock.calls[0] as [Record<string, unknown>];
    expect(fields.error).toMatchObject({ type: 'AdapterParseError', code: 'adapter_parse_error' });
    expect(JSON.stringify(fields)).not.toContain('PRIVATE ANSWER TEXT');
  });

  it('logs the provider message and metadata of an LM error', () => {
    const { res } = fakeResponse();
    const error = new LMServerError('The server had an error', {
      model: 'openai/gpt-4o-mini',
      provider: 'openai',
      status: 500,
      requestId: 'upstream-9',
    });
    filter.catch(error, hostFor(fakeRequest(), res));
    expect(logger.warn.mock.calls[0][0]).toMatchObject({
      error: {
        type: 'LMServerError',
        model: 'openai/gpt-4o-mini',
        upstream_status: 500,
        upstream_request_id: 'upstream-9',
        message: 'The server had an error',
      },
    });
  });
});

class QuestionDto {
  @IsString()
  @Length(1, 20)
  question!: string;
}

@Controller()
class ProbeController {
  @Post('echo')
  echo(@Body() body: QuestionDto) {
    return body;
  }

  @Post('reject')
  reject(): never {
    throw new BadRequestException('not this one');
  }

  @Get('boom')
  boom(): never {
    throw new Error('secret internals');
  }

  @Get('busy')
  busy(): never {
    throw new ServiceUnavailableError('The service is draining.', 5);
  }

  @Get('sse')
  sse(@Res() res: ServerResponse): never {
    res.setHeader('Content-Type', 'text/event-stream');
    res.write('data: {"type":"token"}\n\n');
    // The stream ends itself, as the SSE writer does; the filter must not write in between.
    setTimeout(() => res.end('data: [DONE]\n\n'), 20);
    throw new Error('failed after the stream began');
  }
}

@Module({ controllers: [ProbeController] })
class ProbeModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(JsonContentTypeMiddleware).forRoutes({ path: '*path', method: RequestMethod.POST });
  }
}

describe('ProblemDetailsFilter in the Nest HTTP pipeline', () => {
  let app: NestExpressApplication;
  let logger: FakeLogger;

  beforeAll(async () => {
    logger = fakeLogger();
    const moduleRef = await Test.createTestingModule({
      imports: [ProbeModule],
      providers: [
        { provide: APP_FILTER, useClass: ProblemDetailsFilter },
        { provide: PinoLogger, useValue: logger },
      ],
    }).compile();
    app = moduleRef.createNestApplication<NestExpressApplication>({ logger: false });
    app.useBodyParser('json', { limit: 200 });
    app.useGlobalPipes(createValidationPipe());
    await app.init();
  });

  afterAll(async () => {
    await app.close();
  });

  const server = () => app.getHttpServer() as Parameters<typeof request>[0];

  it('passes a valid request', async () => {
    const res = await request(server()).post('/echo').send({ question: 'Why?' }).expect(201);
    expect(res.body).toEqual({ question: 'Why?' });
  });

  it('answers invalid JSON with 400 invalid_json and a request id', async () => {
    const res = await request(server())
      .post('/echo')
      .set('Content-Type', 'application/json')
      .send('{"question": ')
      .expect(400);
    expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(res.body).toMatchObject({ code: 'invalid_json', status: 400, title: 'Invalid JSON' });
    expect(res.body.request_id).toMatch(UUID);
    expect(res.headers['x-request-id']).toBe(res.body.request_id);
  });

  it('keeps a BadRequestException thrown by a route a plain 400', async () => {
    const res = await request(server()).post('/reject').send({ question: 'x' }).expect(400);
    expect(res.body).toMatchObject({ code: 'bad_request', detail: 'not this one' });
  });

  it('answers a body over the limit with 413 payload_too_large', async () => {
    const res = await request(server())
      .post('/echo')
      .send({ question: 'x'.repeat(500) })
      .expect(413);
    expect(res.body).toMatchObject({
      code: 'payload_too_large',
      detail: 'The request body is larger than the 200-byte limit.',
    });
  });

  it('answers a non-JSON body with 415', async () => {
    const res = await request(server())
      .post('/echo')
      .set('Content-Type', 'text/plain')
      .send('question=hi')
      .expect(415);
    expect(res.body).toMatchObject({
      code: 'unsupported_media_type',
      detail: 'Content-Type must be application/json, not "text/plain".',
    });
  });

  it('answers a JSON body in an unsupported charset with 415', async () => {
    const res = await request(server())
      .post('/echo')
      .set('Content-Type', 'application/json; charset=latin1')
      .send('{"question":"hi"}')
      .expect(415);
    expect(res.body).toMatchObject({
      code: 'unsupported_media_type',
      detail: 'unsupported charset "LATIN1"',
    });
  });

  it('answers a body that fails validation with 422 and the offending fields', async () => {
    const res = await request(server()).post('/echo').send({ question: '', extra: 1 }).expect(422);
    expect(res.body.code).toBe('validation_failed');
    expect(res.body.errors).toEqual(
      expect.arrayContaining([
        { field: 'question', message: 'question must be longer than or equal to 1 characters' },
        { field: 'extra', message: 'property extra should not exist' },
      ]),
    );
  });

  it('answers an empty POST with 422, not 415', async () => {
    const res = await request(server()).post('/echo').expect(422);
    expect(res.body.code).toBe('validation_failed');
  });

  it('answers an unknown route with 404 not_found', async () => {
    const res = await request(server()).get('/nowhere').expect(404);
    expect(res.body).toMatchObject({ code: 'not_found', type: 'https://errors.dspy-nest-api.dev/not_found' });
  });

  it('answers an unknown error with a generic 500', async () => {
    const res = await request(server()).get('/boom').expect(500);
    expect(res.body.detail).toBe('Internal server error');
    expect(res.text).not.toContain('secret internals');
  });

  it('sends Retry-After with a 503', async () => {
    const res = await request(server()).get('/busy').expect(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.body.detail).toBe('The service is draining.');
  });

  it('leaves a started stream alone', async () => {
    const res = await request(server())
      .get('/sse')
      .buffer(true)
      .parse((r, done) => {
        let text = '';
        r.on('data', (chunk: Buffer) => (text += chunk.toString()));
        r.on('end', () => done(null, text));
      });
    expect(res.status).toBe(200);
    expect(res.body).toBe('data: {"type":"token"}\n\ndata: [DONE]\n\n');
  });
});

describe('ProblemDetailsFilter with the real nestjs-pino logger', () => {
  let app: INestApplication;
  let lines: Record<string, any>[];

  beforeAll(async () => {
    lines = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const moduleRef = await Test.createTestingModule({
      imports: [
        ProbeModule,
        LoggerModule.forRootAsync({
          useFactory: () => loggerModuleOptions({ logLevel: 'debug', logPrompts: false }, destination),
        }),
      ],
      providers: [{ provide: APP_FILTER, useClass: ProblemDetailsFilter }],
    }).compile();
    app = moduleRef.createNestApplication({ bufferLogs: true });
    app.useLogger(app.get(Logger));
    await app.init();
  });

  afterAll(async () => {
    await app.close();
  });

  it('logs an unknown error with its stack and the request id the client got', async () => {
    const res = await request(app.getHttpServer() as Parameters<typeof request>[0])
      .get('/boom')
      .set('x-request-id', 'trace-me-1')
      .expect(500);
    expect(res.body.request_id).toBe('trace-me-1');
    expect(res.headers['x-request-id']).toBe('trace-me-1');

    const line = lines.find((l) => l.msg === 'Unhandled error');
    expect(line).toMatchObject({
      level: 'error',
      request_id: 'trace-me-1',
      context: 'ProblemDetailsFilter',
      code: 'internal_error',
    });
    expect(line?.err.stack).toContain('secret internals');
    const completed = lines.find((l) => l.msg === 'request failed with status 500');
    expect(completed).toMatchObject({ level: 'error', res: { statusCode: 500 } });
    expect(completed).not.toHaveProperty('err');
  });

  it('logs an invalid-JSON rejection with the id it answered with, though pino-http never saw the request', async () => {
    const res = await request(app.getHttpServer() as Parameters<typeof request>[0])
      .post('/echo')
      .set('Content-Type', 'application/json')
      .send('{nope')
      .expect(400);
    const line = lines.find((l) => l.msg === 'Request rejected' && l.code === 'invalid_json');
    expect(line?.request_id).toBe(res.body.request_id);
  });
});
