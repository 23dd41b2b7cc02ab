/** Probes and docs never need a key nor count against a rate limit; /metrics is open unless METRICS_REQUIRE_KEY. */
export function isProbePath(path: string): boolean {
  return /^\/health(?:\/|$)/.test(path);
}

export function isMetricsPath(path: string): boolean {
  return /^\/metrics(?:\/|$)/.test(path);
}

export function isDocsPath(path: string): boolean {
  return /^\/docs(?:-json|-yaml)?(?:\/|$)/.test(path);
}
