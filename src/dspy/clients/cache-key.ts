import { createHash } from 'node:crypto';
import { PyFloat } from '../utils/python';
import { StructuredOutputFormat } from './types';

/** Request keys DSPy leaves out of the cache key (`Cache.cache_key` ignored_args_for_cache_key). */
export const IGNORED_CACHE_KEY_ARGS = ['api_key', 'api_base', 'base_url'];

/** DSPy's `_fn_identifier`: the sync and async paths hash differently (fixture lm/request_sync_vs_async_cache_key). */
export const FN_IDENTIFIER = {
  sync: 'dspy.clients.lm.litellm_completion',
  async: 'dspy.clients.lm.alitellm_completion',
} as const;

/** orjson's float format (ryu): shortest digits, `.0` on integral values, exponent outside 1e-5..1e16. */
function orjsonFloat(x: number): string {
  if (!Number.isFinite(x)) return 'null'; // orjson writes NaN/Infinity as null
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa, expText] = x.toExponential().split('e');
  const exp = Number(expText);
  if (exp < -5 || exp > 15) return `${mantissa}e${exp}`;
  const digits = mantissa.replace(/^-/, '').replace('.', '').length;
  const fixed = x.toFixed(Math.max(0, digits - 1 - exp));
  return fixed.includes('.') ? fixed : `${fixed}.0`;
}

/** DSPy `_transform_value`: a structured-outputs model hashes as its JSON schema; dicts are walked, lists are not. */
function transformValue(value: unknown): unknown {
  if (value instanceof StructuredOutputFormat) return value.schema;
  if (value && typeof value === 'object' && !Array.isArray(value) && !(value instanceof PyFloat)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, transformValue(v)]));
  }
  return value;
}

/** `orjson.dumps(value, option=OPT_SORT_KEYS)`: compact, raw UTF-8, keys sorted at every depth. */
export function canonicalJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (value instanceof PyFloat) return orjsonFloat(value.value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : orjsonFloat(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (value instanceof StructuredOutputFormat) return canonicalJson(value.schema);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      // orjson sorts by the keys' UTF-8 bytes; UTF-16 order agrees except between astral characters and
      // U+E000–U+FFFF, which request keys (ASCII parameter names) never contain.
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(String(value));
}

/** The canonical JSON DSPy hashes for a request dict (`_fn_identifier` already included). */
export function cacheKeyJson(request: Record<string, unknown>): string {
  const params: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(request)) {
    if (!IGNORED_CACHE_KEY_ARGS.includes(k)) params[k] = transformValue(v);
  }
  return canonicalJson(params);
}

/** `dspy.clients.cache.Cache.cache_key`: sha256 of the canonical request JSON. */
export function cacheKey(request: Record<string, unknown>): string {
  return createHash('sha256').update(cacheKeyJson(request)).digest('hex');
}
