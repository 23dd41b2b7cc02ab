/**
 * Seeded property-based fuzz of every route, driven by the OpenAPI document the running app serves at /docs-json
 * (plus /docs and /docs-json themselves, which the document does not list). For each documented operation it
 * generates requests from the operation's schemas — valid ones and hostile ones (wrong types, missing and extra
 * fields, prototype-pollution keys, strings at and past their limits, unicode and control characters, deep
 * nesting, broken JSON, wrong content types, odd headers, bad credentials) — and checks over real HTTP:
 *
 * - no 5xx at all: the app is up and ready, the upstream healthy and the load sequential, so none of the
 *   documented 5xx conditions (no LM, saturation, drain, startup, upstream failure) can hold — including the
 *   readiness probe's documented 503, which means "starting or draining" and would be a bug here;
 * - every 4xx is application/problem+json with status, title, code, detail, type and request_id;
 * - a rejected request (any 4xx, and every request built invalid) makes no upstream call;
 * - a request built valid succeeds (streams end with [DONE] and no error event; batch items have answers);
 * - every response carries a well-formed x-request-id (the caller's when well formed), and no configured key;
 * - the app still answers /health/live afterwards.
 *
 * FUZZ_SEED=<int> replays a run; a failure names the seed and fast-check's counterexample path.
 */
import * as fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PROBLEM_TYPE_BASE, expectNoStackTrace, parseSse } from '../support/http';
import { createTestApp, type TestApp } from '../support/test-app';

const SEED = Number.parseInt(process.env.FUZZ_SEED ?? '20250611', 10);
if (!Number.isSafeInteger(SEED))
  throw new Error(`FUZZ_SEED must be an integer, not ${process.env.FUZZ_SEED}`);
const KEY_A = `fuzz-key-a-${randomUUID()}`;
const KEY_B = `fuzz-key-b-${randomUUID()}`;
const UPSTREAM_KEY = `sk-fuzz-${randomUUID()}`;
const BATCH_MAX_ITEMS = 4;
const BODY_LIMIT_BYTES = 1_048_576;
/** Node's default --max-http-header-size: a longer request line is refused by Node itself (see the last test). */
const NODE_MAX_HEADER_BYTES = 16_384;
const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** Runs per documented operation (LM-backed ones get more); the total stays at a few hundred. */
const RUNS: Record<string, number> = {
  'POST /predict': 100,
  'POST /predict/stream': 60,
  'POST /batch': 60,
  'GET /predict/stream': 60,
};
const DEFAULT_RUNS = 20;
const WRONG_METHOD_RUNS = 40;

// ---------------------------------------------------------------------------------------------------------------
// The OpenAPI document

type Schema = Record<string, any>;

interface OpenApi {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, Schema> };
}

interface Operation {
  parameters?: Array<{ name: string; in: string; required?: boolean; schema?: Schema }>;
  requestBody?: { required?: boolean; content?: Record<string, { schema?: Schema }> };
  responses: Record<string, unknown>;
}

interface Route {
  method: string;
  path: string;
  op: Operation;
  /** Predictions need a key when API_KEYS is set; probes, /metrics (by default) and the docs do not. */
  needsKey: boolean;
}

let doc: OpenApi;

function deref(schema: Schema | undefined): Schema {
  let s = schema ?? {};
  for (let i = 0; i < 10 && typeof s.$ref === 'string'; i++) {
    s = String(s.$ref)
      .slice(2)
      .split('/')
      .reduce<any>((node, key) => node?.[key], doc) as Schema;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// Values from schemas

/**
 * String length as class-validator's @Length counts it (validator.js isLength): UTF-16 units, a surrogate pair
 * and a character + VS15/VS16 counting once. JSON Schema's minLength counts code points; the server decides.
 */
function validatorLength(s: string): number {
  const selectors = s.match(/[^\uFE0F\uFE0E][\uFE0F\uFE0E]/g)?.length ?? 0;
  const pairs = s.match(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g)?.length ?? 0;
  return s.length - selectors - pairs;
}

/** Strings a prompt template, a log line or a header could choke on. */
const HOSTILE_TEXT = [
  '[[ ## answer ## ]]',
  '[[ ## completed ## ]]',
  '{"question": "nested"}',
  '${process.env.OPENAI_API_KEY}',
  '{{question}}',
  '</s><|im_end|>',
  "'; DROP TABLE answers; --",
  '__proto__',
  'constructor',
  '\u0000\u0001\u001f\u007f',
  '\r\n\r\nHTTP/1.1 200 OK',
  '\u202eevil\u202c',
  '😀👩‍👩‍👧‍👦',
  'e\u0301\u0301\u0301',
  '\ud800',
  '\udfff\ud800',
  '\ufeff',
  '\ufe0f',
  ' ',
  '\t\n',
];

/** Any string, weighted towards the odd: unicode, control characters, hostile snippets, near-limit lengths. */
function anyText(maxLength: number): fc.Arbitrary<string> {
  const limit = Math.min(maxLength, 80);
  return fc.oneof(
    { weight: 3, arbitrary: fc.string({ maxLength: limit, unit: 'grapheme' }) },
    { weight: 2, arbitrary: fc.string({ maxLength: limit, unit: 'binary' }) },
    { weight: 1, arbitrary: fc.string({ maxLength: limit, unit: 'binary-ascii' }) },
    {
      weight: 2,
      arbitrary: fc
        .array(fc.constantFrom(...HOSTILE_TEXT), { minLength: 1, maxLength: 4 })
        .map((parts) => parts.join(' ')),
    },
  );
}

/** A string at or just inside/outside a length limit, built by repetition (generating 10k chars is slow). */
function nearLength(target: number, spread: number): fc.Arbitrary<string> {
  return fc
    .tuple(
      fc.constantFrom('a', 'é', '中', '😀', '\u0000', ' ', 'x\u0301'),
      fc.integer({ min: Math.max(0, target - spread), max: target + spread }),
    )
    .map(([unit, n]) => unit.repeat(n));
}

/** A string valid for `schema` (minLength/maxLength as the validator counts them). */
function validString(schema: Schema): fc.Arbitrary<string> {
  const min = (schema.minLength as number | undefined) ?? 0;
  const max = (schema.maxLength as number | undefined) ?? 10_000;
  const inRange = (s: string) => validatorLength(s) >= min && validatorLength(s) <= max;
  return fc
    .oneof(
      { weight: 8, arbitrary: anyText(max) },
      { weight: 1, arbitrary: nearLength(max, 2) },
      ...(schema.example !== undefined
        ? [{ weight: 1, arbitrary: fc.constant(String(schema.example)) }]
        : []),
    )
    .filter(inRange);
}

/** A string that breaks `schema`'s length limits (the only constraints a string here has). */
function outOfRangeString(schema: Schema): fc.Arbitrary<string> {
  const min = (schema.minLength as number | undefined) ?? 0;
  const max = (schema.maxLength as number | undefined) ?? 10_000;
  const out = (s: string) => validatorLength(s) < min || validatorLength(s) > max;
  const options: fc.Arbitrary<string>[] = [nearLength(max + 3, 2), nearLength(max * 5, 0)];
  if (min > 0) options.push(fc.constant(''), fc.constant('\ufe0f'));
  return fc.oneof(...options).filter(out);
}

/** JSON of any shape, small. */
const anyJson: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 3 }).map((v) => v as unknown);

/** A JSON value of the wrong type for `schema`. */
function wrongType(schema: Schema): fc.Arbitrary<unknown> {
  const s = deref(schema);
  const options: fc.Arbitrary<unknown>[] = [];
  if (s.type !== 'string') options.push(anyText(40));
  if (s.type !== 'number' && s.type !== 'integer')
    options.push(fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })));
  if (s.type !== 'boolean') options.push(fc.boolean());
  options.push(fc.constant(null));
  if (s.type !== 'array') options.push(fc.array(anyJson, { maxLength: 3 }));
  if (s.type !== 'object' && s.$ref === undefined)
    options.push(fc.dictionary(fc.string({ maxLength: 8 }), anyJson, { maxKeys: 3 }));
  return fc.oneof(...options);
}

function validValue(schema: Schema | undefined, arrayMax: number): fc.Arbitrary<unknown> {
  const s = deref(schema);
  switch (s.type) {
    case 'string':
      return validString(s);
    case 'integer':
      return fc.integer({ min: s.minimum ?? -1000, max: s.maximum ?? 1000 });
    case 'number':
      return fc.double({ min: s.minimum ?? -1000, max: s.maximum ?? 1000, noNaN: true });
    case 'boolean':
      return fc.boolean();
    case 'array':
      // The schema has no minItems/maxItems; the server takes 1..BATCH_MAX_ITEMS (see invalidValue).
      return fc.array(validValue(s.items, arrayMax), { minLength: 1, maxLength: arrayMax });
    default: {
      const properties = (s.properties ?? {}) as Record<string, Schema>;
      const required = (s.required ?? []) as string[];
      return fc.record(
        Object.fromEntries(Object.entries(properties).map(([k, p]) => [k, validValue(p, arrayMax)])),
        { requiredKeys: required },
      );
    }
  }
}

/** Names an attacker or a typo would send; `__proto__` and friends are the interesting ones. */
const EXTRA_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'questoin',
  'Question',
  'QUESTION',
  ' question',
  'question\u0000',
  '',
  '$where',
  'model',
  'api_base',
  'temperature',
];

/** Sets `key` as an own enumerable property even when it is `__proto__` (JSON.stringify then writes it). */
function withOwn(target: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  return target;
}

/** A value that breaks `schema` in exactly one way, with the way named. */
function invalidValue(schema: Schema | undefined, arrayMax: number): fc.Arbitrary<[string, unknown]> {
  const s = deref(schema);
  if (s.type === 'array') {
    const item = deref(s.items);
    return fc.oneof(
      fc.constant<[string, unknown]>(['empty batch', []]),
      fc
        .array(validValue(item, arrayMax), { minLength: arrayMax + 1, maxLength: arrayMax + 3 })
        .map((v): [string, unknown] => ['batch over BATCH_MAX_ITEMS', v]),
      fc
        .tuple(
          fc.array(validValue(item, arrayMax), { maxLength: arrayMax - 1 }),
          invalidValue(item, arrayMax),
        )
        .chain(([items, [why, bad]]) =>
          fc
            .integer({ min: 0, max: items.length })
            .map((at): [string, unknown] => [
              `item: ${why}`,
              [...items.slice(0, at), bad, ...items.slice(at)],
            ]),
        ),
      wrongType(s).map((v): [string, unknown] => ['body of the wrong type', v]),
    );
  }
  if (s.type === 'object' || s.properties) {
    const properties = (s.properties ?? {}) as Record<string, Schema>;
    const required = (s.required ?? []) as string[];
    const valid = validValue(s, arrayMax) as fc.Arbitrary<Record<string, unknown>>;
    const options: fc.Arbitrary<[string, unknown]>[] = [
      fc
        .tuple(
          valid,
          fc.oneof(
            { weight: 3, arbitrary: fc.constantFrom(...EXTRA_KEYS) },
            { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 12 }) },
          ),
          anyJson,
        )
        .filter(([, key]) => !Object.hasOwn(properties, key))
        .map(([v, key, extra]): [string, unknown] => [
          `unknown field ${JSON.stringify(key)}`,
          withOwn({ ...v }, key, extra),
        ]),
      wrongType(s).map((v): [string, unknown] => ['body of the wrong type', v]),
    ];
    for (const key of required) {
      options.push(
        valid.map((v): [string, unknown] => {
          const { [key]: _dropped, ...rest } = v;
          return [`missing ${key}`, rest];
        }),
      );
    }
    for (const [key, prop] of Object.entries(properties)) {
      const p = deref(prop);
      const bad: fc.Arbitrary<[string, unknown]>[] = [
        wrongType(p).map((x): [string, unknown] => [`${key} of the wrong type`, x]),
      ];
      if (p.type === 'string') {
        bad.push(outOfRangeString(p).map((x): [string, unknown] => [`${key} out of length range`, x]));
      }
      options.push(
        fc
          .tuple(valid, fc.oneof(...bad))
          .map(([v, [why, x]]): [string, unknown] => [why, { ...v, [key]: x }]),
      );
    }
    return fc.oneof(...options);
  }
  return wrongType(s).map((v): [string, unknown] => ['value of the wrong type', v]);
}

/** JSON text nested `depth` levels deep, built as text: JSON.stringify itself overflows the stack on it. */
function deepJson(depth: number, kind: 'array' | 'object', inField: boolean): string {
  const inner =
    kind === 'array'
      ? `${'['.repeat(depth)}${']'.repeat(depth)}`
      : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
  return inField ? `{"question":"deep","x":${inner}}` : inner;
}

// ---------------------------------------------------------------------------------------------------------------
// Requests

interface Case {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** Why this request must be rejected with a 4xx; null when it must succeed; the word 'any' when either is fine. */
  invalid: string | null;
}

const VALID_CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'Application/JSON',
  'application/json;charset=UTF-8',
];
const WRONG_CONTENT_TYPES = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  'application/jsonx',
  'application/json; charset=latin1',
  'application/json; charset=utf-16',
  '*/*',
  '',
];

/** Headers that must not change the outcome. */
const oddHeaders: fc.Arbitrary<Record<string, string>> = fc.record(
  {
    'x-request-id': fc.oneof(
      fc.constant('client-req.42:abc_Z'),
      fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/),
      fc.constantFrom(
        '',
        ' ',
        'a b',
        'x'.repeat(129),
        '../../etc/passwd',
        'é',
        '"quoted"',
        'id\tid',
        '<script>',
      ),
    ),
    'cache-control': fc.constantFrom(
      'no-cache',
      'NO-CACHE',
      'no-store',
      'max-age=0',
      'no-cache, no-store',
      ',,,no-cache,,',
      'private, max-age=31536000',
      'garbage=;;;',
      'x'.repeat(2000),
    ),
    accept: fc.constantFrom('*/*', 'text/event-stream', 'application/xml', 'application/problem+json', '???'),
    'accept-language': fc.constantFrom('en', 'zz-ZZ', '*;q=0'),
    'x-forwarded-for': fc.constantFrom('1.2.3.4', 'not-an-ip', '::1, 10.0.0.1'),
    'x-fuzz': fc.string({ maxLength: 40, unit: 'binary-ascii' }).map((s) => s.replace(/[^\t\x20-\x7e]/g, '')),
  },
  { requiredKeys: [] },
);

interface Auth {
  headers: Record<string, string>;
  ok: boolean;
  label: string;
}

/** Credentials: mostly valid (so validation is reached), often missing or wrong, sometimes malformed. */
const auth: fc.Arbitrary<Auth> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constant<Auth>({
      headers: { authorization: `Bearer ${KEY_A}` },
      ok: true,
      label: 'bearer A',
    }),
  },
  {
    weight: 3,
    arbitrary: fc.constant<Auth>({ headers: { 'x-api-key': KEY_B }, ok: true, label: 'x-api-key B' }),
  },
  {
    weight: 1,
    arbitrary: fc.constant<Auth>({
      headers: { authorization: `bearer   ${KEY_B}  ` },
      ok: true,
      label: 'bearer, odd spacing',
    }),
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom<Auth>(
      { headers: {}, ok: false, label: 'no key' },
      { headers: { authorization: `Bearer ${KEY_A}x` }, ok: false, label: 'wrong bearer' },
      { headers: { 'x-api-key': KEY_A.slice(0, -1) }, ok: false, label: 'truncated x-api-key' },
      {
        headers: { authorization: `Basic ${Buffer.from(`u:${KEY_A}`).toString('base64')}` },
        ok: false,
        label: 'basic',
      },
      { headers: { authorization: 'Bearer' }, ok: false, label: 'bearer without key' },
      { headers: { authorization: `Bearer ${KEY_A} extra` }, ok: false, label: 'bearer with two tokens' },
      {
        headers: { authorization: `Bearer ${KEY_A}x`, 'x-api-key': KEY_B },
        ok: false,
        label: 'wrong bearer + good x-api-key',
      },
      { headers: { 'x-api-key': '' }, ok: false, label: 'empty x-api-key' },
      { headers: { authorization: `Bearer ${'k'.repeat(4000)}` }, ok: false, label: 'huge bearer' },
      { headers: { authorization: 'Bearer \u00e9\u00ff' }, ok: false, label: 'latin1 bearer' },
    ),
  },
);

/** A POST body for a JSON operation: valid, invalid by schema, or broken below the schema (text, type, size). */
function jsonBody(
  schema: Schema,
): fc.Arbitrary<{ body?: string; contentType?: string; invalid: string | null }> {
  const withType = (invalid: string | null) =>
    fc.constantFrom(...VALID_CONTENT_TYPES).map((contentType) => ({ contentType, invalid }));
  const valid = validValue(schema, BATCH_MAX_ITEMS);
  return fc.oneof(
    {
      weight: 10,
      arbitrary: fc.tuple(valid, withType(null)).map(([v, t]) => ({ body: JSON.stringify(v), ...t })),
    },
    {
      weight: 6,
      arbitrary: fc
        .tuple(invalidValue(schema, BATCH_MAX_ITEMS), fc.constantFrom(...VALID_CONTENT_TYPES))
        .map(([[why, v], contentType]) => ({ body: JSON.stringify(v) ?? 'null', contentType, invalid: why })),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          valid,
          fc.constantFrom<[string, (t: string) => string]>(
            ['truncated JSON', (t) => t.slice(0, Math.max(1, t.length - 1))],
            ['trailing garbage', (t) => `${t}}`],
            ['trailing comma', (t) => t.replace(/}$/, ',}').replace(/]$/, ',]')],
            ['single quotes', (t) => t.replace(/"/g, "'")],
            ['unquoted key', (t) => t.replace(/"question"/, 'question')],
            ['NaN value', (t) => t.replace(/"question":"[^"]*"/, '"question":NaN')],
            ['comment', (t) => `/* c */${t}`],
            ['raw control character', (t) => t.replace(/"question":"/, '"question":"\u0001')],
            ['empty JSON body', () => ' '],
            ['top-level scalar', () => '"What is AI?"'],
          ),
          withType(null),
        )
        .map(([v, [why, mangle], t]) => ({
          body: mangle(JSON.stringify(v)),
          contentType: t.contentType,
          invalid: why,
        }))
        // Only a mangle that really broke the text (or left a blank or scalar body, which strict JSON refuses).
        .filter(({ body }) => !isJson(body) || body.trim() === '' || body === '"What is AI?"'),
    },
    // No body at all: validation names the missing fields (not content negotiation).
    { weight: 1, arbitrary: fc.constant({ invalid: 'no body' }) },
    {
      weight: 2,
      arbitrary: fc.tuple(valid, fc.constantFrom(...WRONG_CONTENT_TYPES)).map(([v, contentType]) => ({
        body: JSON.stringify(v),
        contentType: contentType === '' ? undefined : contentType,
        invalid: `content type ${JSON.stringify(contentType)}`,
      })),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          fc.integer({ min: 33, max: 20_000 }),
          fc.constantFrom<'array' | 'object'>('array', 'object'),
          fc.boolean(),
        )
        .map(([depth, kind, inField]) => ({
          body: deepJson(depth, kind, inField),
          contentType: 'application/json',
          invalid: `nested ${depth} levels`,
        })),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom('a', '😀').map((unit) => ({
        body: JSON.stringify({
          question: unit.repeat(Math.ceil((BODY_LIMIT_BYTES + 10) / Buffer.byteLength(unit))),
        }),
        contentType: 'application/json',
        invalid: 'body over BODY_LIMIT_BYTES',
      })),
    },
  );
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Percent-encodes UTF-8 bytes (a lone surrogate becomes U+FFFD, where encodeURIComponent would throw). */
function percentEncode(text: string): string {
  return [...Buffer.from(text, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9_.~-]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('');
}

/** A query string for the operation's parameters: valid, or broken in one way. */
function query(op: Operation): fc.Arbitrary<{ qs: string; invalid: string | null }> {
  const params = (op.parameters ?? []).filter((p) => p.in === 'query');
  const enc = percentEncode;
  const validPairs = fc.tuple(
    ...params.map((p) => validValue(p.schema, 1).map((v) => [p.name, String(v)] as const)),
  );
  const render = (pairs: ReadonlyArray<readonly [string, string]>) =>
    pairs.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&');
  const options: fc.Arbitrary<{ qs: string; invalid: string | null }>[] = [
    validPairs.map((pairs) => ({ qs: render(pairs), invalid: null })),
    fc
      .tuple(validPairs, fc.constantFrom(...EXTRA_KEYS.filter((k) => k !== '')), fc.string({ maxLength: 10 }))
      .filter(([, key]) => !params.some((p) => p.name === key))
      .map(([pairs, key, value]) => ({
        qs: `${render(pairs)}&${enc(key)}=${enc(value)}`,
        invalid: `extra ${key}`,
      })),
    fc.tuple(validPairs, fc.constantFrom('[]', '[x]', '[__proto__]')).map(([pairs, suffix]) => ({
      qs: `${render(pairs)}&${pairs.map(([k]) => `${k}${suffix}=1`).join('&')}`,
      invalid: `bracketed ${suffix}`,
    })),
  ];
  for (const p of params) {
    const others = params.filter((o) => o !== p);
    const rest = fc.tuple(
      ...others.map((o) => validValue(o.schema, 1).map((v) => [o.name, String(v)] as const)),
    );
    if (p.required) options.push(rest.map((pairs) => ({ qs: render(pairs), invalid: `missing ${p.name}` })));
    const s = deref(p.schema);
    if (s.type === 'string') {
      options.push(
        fc
          .tuple(
            rest,
            fc.oneof(
              fc.constant(''),
              nearLength((s.maxLength as number) + 3, 2).map((x) => x.replace(/\u0000/g, 'a')),
            ),
          )
          .filter(
            ([, v]) =>
              validatorLength(v) < (s.minLength ?? 0) || validatorLength(v) > (s.maxLength ?? Infinity),
          )
          .map(([pairs, v]) => ({ qs: render([...pairs, [p.name, v]]), invalid: `${p.name} out of range` })),
        fc.tuple(rest, validValue(p.schema, 1), validValue(p.schema, 1)).map(([pairs, a, b]) => ({
          qs: render([...pairs, [p.name, String(a)], [p.name, String(b)]]),
          invalid: `${p.name} twice`,
        })),
      );
    }
  }
  // Past Node's request-line limit Node answers 431 itself, before the app; that gap has its own test below.
  return fc.oneof(...options).filter(({ qs }) => qs.length < NODE_MAX_HEADER_BYTES - 1024);
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

let t: TestApp;

function send(c: Case): Promise<Reply> {
  const { port } = t.server.address() as AddressInfo;
  const headers: Record<string, string | number> = { ...c.headers };
  if (c.body !== undefined) headers['content-length'] = Buffer.byteLength(c.body);
  return new Promise<Reply>((resolve, reject) => {
    let answered = false;
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      method: c.method,
      path: c.path,
      headers,
      agent: false,
    });
    req.setTimeout(15_000, () => req.destroy(new Error(`no answer in 15 s to ${c.method} ${c.path}`)));
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    // A server that refuses a large body early may reset the socket while we are still writing it.
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    req.end(c.body);
  });
}

function isSwaggerPath(path: string): boolean {
  return /^\/docs(?:-json|-yaml)?(?:[/?]|$)/.test(path);
}

interface Tally {
  runs: number;
  byStatus: Record<number, number>;
  invalid: number;
  upstreamCallsForRejected: number;
  upstreamCallsForInvalid: number;
  fiveXx: number;
}

const tallies = new Map<string, Tally>();

/** How often each kind of hostile input was sent, for the summary: a fuzz that never sent one proves nothing. */
const KINDS: Record<string, RegExp> = {
  'prototype keys': /__proto__|constructor|prototype|toString|valueOf|hasOwnProperty/,
  'deep nesting': /^nested \d+ levels/,
  'broken JSON': /JSON|trailing|quotes|unquoted|NaN|comment|control character|scalar/,
  'wrong content type': /^content type/,
  'over the body limit': /BODY_LIMIT_BYTES/,
  'out of length range': /out of (length )?range/,
  'wrong type': /wrong type/,
  'missing field': /^(item: )?missing|no body/,
  'bad credentials': /^credentials/,
};
const kinds: Record<string, number> = Object.fromEntries(Object.keys(KINDS).map((k) => [k, 0]));

function tally(route: string): Tally {
  let entry = tallies.get(route);
  if (!entry) {
    entry = {
      runs: 0,
      byStatus: {},
      invalid: 0,
      upstreamCallsForRejected: 0,
      upstreamCallsForInvalid: 0,
      fiveXx: 0,
    };
    tallies.set(route, entry);
  }
  return entry;
}

/** The properties every response has; `expectOk` adds the success checks of the route. */
async function check(route: string, c: Case, expectOk: (reply: Reply) => void): Promise<void> {
  const before = t.upstream.calls;
  const reply = await send(c);
  const calls = t.upstream.calls - before;
  const entry = tally(route);
  entry.runs++;
  entry.byStatus[reply.status] = (entry.byStatus[reply.status] ?? 0) + 1;
  if (reply.status >= 500) entry.fiveXx++;
  if (c.invalid !== null && c.invalid !== 'any') {
    entry.invalid++;
    entry.upstreamCallsForInvalid += calls;
    for (const [kind, pattern] of Object.entries(KINDS)) if (pattern.test(c.invalid)) kinds[kind]++;
  }
  if (reply.status >= 400) entry.upstreamCallsForRejected += calls;

  const what = { request: `${c.method} ${c.path.slice(0, 120)}`, invalid: c.invalid, status: reply.status };
  expect({ ...what, fiveXx: reply.status >= 500 }).toEqual({ ...what, fiveXx: false });

  // The request id: the caller's when well formed, otherwise a fresh one; always present (Swagger's own
  // responses aside: a known gap, pinned by its own test below).
  const incoming = c.headers['x-request-id'];
  const id = reply.headers['x-request-id'];
  if (!(isSwaggerPath(c.path) && reply.status < 400)) {
    const wanted =
      incoming !== undefined && REQUEST_ID_PATTERN.test(incoming) ? incoming : REQUEST_ID_PATTERN;
    expect({ ...what, requestId: id }).toEqual({
      ...what,
      requestId: typeof wanted === 'string' ? wanted : expect.stringMatching(wanted),
    });
  }

  // No configured secret ever leaves the process.
  const everything = `${reply.text}\n${JSON.stringify(reply.headers)}`;
  const leaked = [KEY_A, KEY_B, UPSTREAM_KEY].filter((secret) => everything.includes(secret));
  expect({ ...what, leaked }).toEqual({ ...what, leaked: [] });

  if (reply.status >= 400) {
    expect({ ...what, contentType: reply.headers['content-type'] }).toEqual({
      ...what,
      contentType: expect.stringMatching(/^application\/problem\+json/),
    });
    const problem = JSON.parse(reply.text) as Record<string, unknown>;
    expect(problem).toEqual(
      expect.objectContaining({
        type: `${PROBLEM_TYPE_BASE}${String(problem.code)}`,
        title: expect.stringMatching(/\S/),
        status: reply.status,
        detail: expect.stringMatching(/\S/),
        code: expect.stringMatching(/^[a-z0-9_]+$/),
        request_id: id,
      }),
    );
    expectNoStackTrace(reply.text);
    // A rejected request never reaches the upstream LM.
    expect({ ...what, upstreamCalls: calls }).toEqual({ ...what, upstreamCalls: 0 });
  }
  if (c.invalid !== null && c.invalid !== 'any') {
    expect({ ...what, upstreamCalls: calls, rejected: reply.status >= 400 && reply.status < 500 }).toEqual({
      ...what,
      upstreamCalls: 0,
      rejected: true,
    });
  }
  if (c.invalid === null) {
    expect({ ...what, ok: reply.status >= 200 && reply.status < 300 }).toEqual({ ...what, ok: true });
    expectOk(reply);
  }
}

function expectSseSuccess(reply: Reply): void {
  expect(reply.headers['content-type']).toMatch(/^text\/event-stream/);
  const sse = parseSse(reply.text);
  expect(sse.data.at(-1)).toBe('[DONE]');
  expect(sse.events.filter((e) => e.type === 'error')).toEqual([]);
  expect(sse.events.filter((e) => e.type === 'complete')).toHaveLength(1);
}

function expectJsonSuccess(reply: Reply, route: string): void {
  expect(reply.headers['content-type']).toMatch(/^application\/json/);
  const body = JSON.parse(reply.text);
  if (route === 'POST /predict') expect(typeof body.answer).toBe('string');
  if (route === 'POST /batch') {
    for (const item of body.results as Array<Record<string, unknown>>) {
      expect({ error: item.error, answer: typeof item.answer }).toEqual({ error: null, answer: 'string' });
    }
  }
}

function successCheck(route: Route): (reply: Reply) => void {
  const name = `${route.method.toUpperCase()} ${route.path}`;
  if (route.path === '/predict/stream') return expectSseSuccess;
  if (route.path === '/metrics/prometheus') return (reply) => expect(reply.text).toMatch(/^# (HELP|TYPE) /m);
  if (route.path === '/docs') return (reply) => expect(reply.text).toContain('swagger-ui');
  return (reply) => expectJsonSuccess(reply, name);
}

/** The arbitrary of requests for one route. */
function casesFor(route: Route): fc.Arbitrary<Case> {
  const method = route.method.toUpperCase();
  const jsonSchema = route.op.requestBody?.content?.['application/json']?.schema;
  const parts = fc.record({ auth, odd: oddHeaders });
  const build = (
    p: { auth: Auth; odd: Record<string, string> },
    path: string,
    body: { body?: string; contentType?: string; invalid: string | null },
  ): Case => {
    const authOk = !route.needsKey || p.auth.ok;
    const headers = { ...p.odd, ...(route.needsKey ? p.auth.headers : {}) };
    if (body.contentType !== undefined) headers['content-type'] = body.contentType;
    return {
      method,
      path,
      headers,
      body: body.body,
      invalid: body.invalid ?? (authOk ? null : `credentials: ${p.auth.label}`),
    };
  };
  if (method === 'POST' && jsonSchema) {
    return fc.tuple(parts, jsonBody(jsonSchema)).map(([p, body]) => build(p, route.path, body));
  }
  if ((route.op.parameters ?? []).some((p) => p.in === 'query')) {
    return fc
      .tuple(parts, query(route.op))
      .map(([p, q]) => build(p, `${route.path}?${q.qs}`, { invalid: q.invalid }));
  }
  // Parameterless GETs: stray query parameters and a stray body are ignored unless the body is broken JSON.
  return fc
    .tuple(
      parts,
      fc.oneof(
        fc.constant(''),
        fc.constantFrom('?x=1', '?__proto__[x]=1', '?constructor=1', '?%ZZ', `?q=${'a'.repeat(3000)}`),
      ),
      fc.oneof(
        {
          weight: 4,
          arbitrary: fc.constant<{ body?: string; contentType?: string; invalid: string | null }>({
            invalid: null,
          }),
        },
        {
          weight: 1,
          arbitrary: fc.constant({
            body: '{"question": ',
            contentType: 'application/json',
            invalid: 'broken JSON body on a GET',
          }),
        },
        { weight: 1, arbitrary: fc.constant({ body: 'hello', contentType: 'text/plain', invalid: null }) },
      ),
    )
    .map(([p, qs, body]) => build(p, `${route.path}${qs}`, body));
}

/** Each property gets its own seed derived from FUZZ_SEED, so routes do not all draw the same sequence. */
function assertWithSeed(
  name: string,
  index: number,
  property: fc.IAsyncProperty<[Case]>,
  numRuns: number,
): Promise<void> {
  return fc.assert(property, { seed: SEED + index, numRuns }).catch((error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    // fast-check keeps the failed assertion as the cause; show it next to the counterexample.
    const cause = error instanceof Error && error.cause instanceof Error ? `\n${error.cause.message}` : '';
    throw new Error(
      `fuzz of ${name} (seed ${SEED + index}) failed; replay with FUZZ_SEED=${SEED}\n${message}${cause}`,
    );
  });
}

// ---------------------------------------------------------------------------------------------------------------

describe(`fuzz every route from the OpenAPI document (FUZZ_SEED=${SEED})`, () => {
  let routes: Route[] = [];

  beforeAll(async () => {
    t = await createTestApp({
      API_KEYS: `${KEY_A},${KEY_B}`,
      OPENAI_API_KEY: UPSTREAM_KEY,
      BATCH_MAX_ITEMS: String(BATCH_MAX_ITEMS),
      BODY_LIMIT_BYTES: String(BODY_LIMIT_BYTES),
    });
    const res = await send({ method: 'GET', path: '/docs-json', headers: {}, invalid: null });
    doc = JSON.parse(res.text) as OpenApi;
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        routes.push({ method, path, op, needsKey: !/^\/(health|metrics)(\/|$)/.test(path) });
      }
    }
    // The document does not describe itself nor the UI; they are routes all the same.
    routes.push({ method: 'get', path: '/docs-json', op: { responses: {} }, needsKey: false });
    routes.push({ method: 'get', path: '/docs', op: { responses: {} }, needsKey: false });
    routes = routes.sort((a, b) => `${a.path} ${a.method}`.localeCompare(`${b.path} ${b.method}`));
  });

  afterAll(async () => {
    const rows = [...tallies.entries()].map(
      ([route, e]) =>
        `${route}: ${e.runs} runs, ${e.invalid} invalid, statuses ${JSON.stringify(e.byStatus)}, ` +
        `5xx ${e.fiveXx}, upstream calls for rejected ${e.upstreamCallsForRejected}, for invalid ${e.upstreamCallsForInvalid}`,
    );
    process.stdout.write(
      `\nfuzz summary (FUZZ_SEED=${SEED}, fast-check ${fc.__version})\n${rows.join('\n')}\n` +
        `hostile inputs by kind: ${JSON.stringify(kinds)}\n`,
    );
    await t?.close();
  });

  it('reads every documented operation, LM-backed ones with their schemas', () => {
    const names = routes.map((r) => `${r.method.toUpperCase()} ${r.path}`);
    expect(names).toEqual(
      expect.arrayContaining([
        'POST /predict',
        'POST /predict/stream',
        'GET /predict/stream',
        'POST /batch',
        'GET /health',
        'GET /health/live',
        'GET /health/ready',
        'GET /metrics',
        'GET /metrics/prometheus',
        'GET /docs-json',
        'GET /docs',
      ]),
    );
    const predict = routes.find((r) => r.method === 'post' && r.path === '/predict')!;
    const schema = deref(predict.op.requestBody?.content?.['application/json']?.schema);
    expect(schema.properties.question).toMatchObject({ type: 'string', minLength: 1, maxLength: 10_000 });
  });

  it('holds the properties on every documented operation', async () => {
    for (const [index, route] of routes.entries()) {
      const name = `${route.method.toUpperCase()} ${route.path}`;
      const ok = successCheck(route);
      await assertWithSeed(
        name,
        index,
        fc.asyncProperty(casesFor(route), (c) => check(name, c, ok)),
        RUNS[name] ?? DEFAULT_RUNS,
      );
    }
    expect(tallies.size).toBe(routes.length);
  }, 120_000);

  it('answers undocumented methods on every documented path with a 4xx problem and no upstream call', async () => {
    const paths = [...new Set(routes.map((r) => r.path))];
    const documented = new Set(routes.map((r) => `${r.method.toUpperCase()} ${r.path}`));
    const wrong = paths.flatMap((path) =>
      ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']
        .filter((m) => !documented.has(`${m} ${path}`))
        .map((m) => [m, path]),
    );
    const arb = fc
      .tuple(fc.constantFrom(...wrong), auth, oddHeaders, fc.option(anyJson, { nil: undefined }))
      .map(([[method, path], a, odd, body]): Case => ({
        method,
        path,
        headers: {
          ...odd,
          ...a.headers,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        invalid: `${method} is not a method of ${path}`,
      }));
    await assertWithSeed(
      'wrong methods',
      routes.length,
      fc.asyncProperty(arb, (c) => check('wrong methods', c, () => undefined)),
      WRONG_METHOD_RUNS,
    );
  }, 60_000);

  it('still answers /health/live and /health/ready afterwards', async () => {
    const live = await send({ method: 'GET', path: '/health/live', headers: {}, invalid: null });
    expect({ status: live.status, body: JSON.parse(live.text) }).toEqual({
      status: 200,
      body: { status: 'ok', info: {}, error: {}, details: {} },
    });
    const ready = await send({ method: 'GET', path: '/health/ready', headers: {}, invalid: null });
    expect(ready.status).toBe(200);
    const total = [...tallies.values()].reduce((sum, e) => sum + e.runs, 0);
    expect(total).toBeGreaterThanOrEqual(400);
    // Every kind of hostile input was actually sent.
    expect(Object.entries(kinds).filter(([, n]) => n === 0)).toEqual([]);
  });

  // SwaggerModule.setup() mounts /docs on Express before Nest's middleware runs; setupApp() assigns the id first.
  it('gives /docs and /docs-json an x-request-id too', async () => {
    for (const path of ['/docs', '/docs-json']) {
      const reply = await send({ method: 'GET', path, headers: {}, invalid: null });
      expect({ path, status: reply.status, id: reply.headers['x-request-id'] }).toEqual({
        path,
        status: 200,
        id: expect.stringMatching(REQUEST_ID_PATTERN),
      });
    }
  });

  // Node's HTTP parser refuses a request line over --max-http-header-size (16 KiB) before any middleware runs; a
  // GET question within the 10,000-character limit can percent-encode past it. The server's 'clientError' handler
  // (setupApp) answers in problem+json.
  it('answers a request line over the header limit with problem+json (431), not a bare status', async () => {
    const question = 'é'.repeat(3000);
    const reply = await send({
      method: 'GET',
      path: `/predict/stream?question=${encodeURIComponent(question)}`,
      headers: { 'x-api-key': KEY_A },
      invalid: 'any',
    });
    expect(reply.status).toBe(431);
    expect(reply.headers['content-type']).toMatch(/^application\/problem\+json/);
  });
});
