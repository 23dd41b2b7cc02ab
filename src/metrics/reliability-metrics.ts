import { Counter, Gauge, type Registry } from 'prom-client';

/** Why admission control refused a request: no room in the queue, or no slot freed within the queue timeout. */
export type ShedReason = 'queue_full' | 'queue_timeout';

/** The LM-backed routes whose work a client can abort by disconnecting. */
export type DisconnectRoute = 'predict' | 'stream' | 'batch';

export type CircuitStateName = 'closed' | 'open' | 'half-open';

/** `circuit_breaker_state`: 0 closed, 1 open (failing fast), 2 half-open (the trial call may go through). */
export const CIRCUIT_STATE_VALUES: Readonly<Record<CircuitStateName, number>> = {
  closed: 0,
  open: 1,
  'half-open': 2,
};

/** What the metrics read from a circuit breaker at scrape time, and the hook they count refusals with. */
export interface ObservableCircuit {
  readonly circuit: CircuitStateName;
  addListener(listener: CircuitListener): void;
}

export interface CircuitListener {
  /** A call was refused (503) because the circuit was open, or half-open with its trial already running. */
  rejected?(): void;
  /** The circuit opened (threshold reached, or the half-open trial failed). */
  opened?(): void;
}

/** The admission figures read at scrape time. */
export interface AdmissionGauges {
  readonly inFlight: number;
  readonly waiting: number;
}

/** The `reliability` section of `GET /metrics`. */
export interface ReliabilitySummary {
  shed: Record<ShedReason, number>;
  refused_draining: number;
  in_flight: number;
  queued: number;
  circuit: { state: CircuitStateName | null; state_value: number | null; opened: number; rejected: number };
  client_disconnects: Record<DisconnectRoute, number>;
}

/**
 * Counters for load shedding, draining, the circuit breaker and client disconnects, in Prometheus and in the
 * `reliability` section of the JSON summary. Labels come from the closed sets above. Gauges read their sources
 * (admission, breaker) at scrape time, so a half-open circuit (a matter of elapsed time) shows without an event.
 *
 * - `admission_shed_total{reason}`: 503 `service_unavailable` from admission control (queue_full | queue_timeout)
 * - `admission_draining_refused_total`: 503 `service_draining` (new or queued requests once shutdown began)
 * - `admission_in_flight`, `admission_queued`: slots held and requests waiting for one
 * - `circuit_breaker_state`: see {@link CIRCUIT_STATE_VALUES}; `circuit_breaker_opened_total`;
 *   `circuit_breaker_rejected_total`: calls refused without reaching the upstream
 * - `client_disconnects_total{route}`: clients that left while their request held a slot — work that was aborted
 */
export class ReliabilityMetrics {
  private readonly shedCounts: Record<ShedReason, number> = { queue_full: 0, queue_timeout: 0 };
  private drainingRefusals = 0;
  private readonly disconnects: Record<DisconnectRoute, number> = { predict: 0, stream: 0, batch: 0 };
  private circuitOpens = 0;
  private circuitRejections = 0;
  private circuitSource: ObservableCircuit | null = null;
  private admissionSource: AdmissionGauges | null = null;

  private readonly shedCounter: Counter<'reason'>;
  private readonly drainingCounter: Counter;
  private readonly disconnectCounter: Counter<'route'>;
  private readonly circuitOpenCounter: Counter;
  private readonly circuitRejectCounter: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    // prom-client calls `collect` with the metric as `this`: the sources are read through these closures.
    const admission = () => this.admissionSource;
    const circuit = () => this.circuitSource;
    this.shedCounter = new Counter({
      name: 'admission_shed_total',
      help: 'LM-backed requests refused by admission control (503 service_unavailable), by reason',
      labelNames: ['reason'],
      registers,
    });
    this.drainingCounter = new Counter({
      name: 'admission_draining_refused_total',
      help: 'LM-backed requests refused because the instance is draining for shutdown (503 service_draining)',
      registers,
    });
    new Gauge({
      name: 'admission_in_flight',
      help: 'LM-backed requests holding an admission slot',
      registers,
      collect() {
        this.set(admission()?.inFlight ?? 0);
      },
    });
    new Gauge({
      name: 'admission_queued',
      help: 'LM-backed requests waiting for an admission slot',
      registers,
      collect() {
        this.set(admission()?.waiting ?? 0);
      },
    });
    this.disconnectCounter = new Counter({
      name: 'client_disconnects_total',
      help: 'Clients that disconnected while their request was running; its work (and upstream call) was aborted',
      labelNames: ['route'],
      registers,
    });
    new Gauge({
      name: 'circuit_breaker_state',
      help: 'Upstream circuit breaker state: 0 closed, 1 open, 2 half-open',
      registers,
      // Summed over cluster workers a state means nothing; the worst worker's is what an alert wants.
      aggregator: 'max',
      collect() {
        const state = circuit()?.circuit;
        if (state) this.set(CIRCUIT_STATE_VALUES[state]);
      },
    });
    this.circuitOpenCounter = new Counter({
      name: 'circuit_breaker_opened_total',
      help: 'Times the upstream circuit breaker opened',
      registers,
    });
    this.circuitRejectCounter = new Counter({
      name: 'circuit_breaker_rejected_total',
      help: 'LM calls refused by an open circuit (503) without reaching the upstream',
      registers,
    });
    for (const reason of Object.keys(this.shedCounts) as ShedReason[]) this.shedCounter.inc({ reason }, 0);
    for (const route of Object.keys(this.disconnects) as DisconnectRoute[])
      this.disconnectCounter.inc({ route }, 0);
  }

  shed(reason: ShedReason): void {
    this.shedCounts[reason] += 1;
    this.shedCounter.inc({ reason });
  }

  refusedDraining(): void {
    this.drainingRefusals += 1;
    this.drainingCounter.inc();
  }

  clientDisconnected(route: DisconnectRoute): void {
    this.disconnects[route] += 1;
    this.disconnectCounter.inc({ route });
  }

  /** Reads in-flight and queued counts at scrape time. */
  watchAdmission(source: AdmissionGauges): void {
    this.admissionSource = source;
  }

  /** Publishes this breaker's state and counts its refusals and openings; watching it again changes nothing. */
  watchCircuit(breaker: ObservableCircuit): void {
    if (this.circuitSource === breaker) return;
    this.circuitSource = breaker;
    breaker.addListener({
      rejected: () => {
        if (this.circuitSource !== breaker) return;
        this.circuitRejections += 1;
        this.circuitRejectCounter.inc();
      },
      opened: () => {
        if (this.circuitSource !== breaker) return;
        this.circuitOpens += 1;
        this.circuitOpenCounter.inc();
      },
    });
  }

  summary(): ReliabilitySummary {
    const state = this.circuitSource?.circuit ?? null;
    return {
      shed: { ...this.shedCounts },
      refused_draining: this.drainingRefusals,
      in_flight: this.admissionSource?.inFlight ?? 0,
      queued: this.admissionSource?.waiting ?? 0,
      circuit: {
        state,
        state_value: state === null ? null : CIRCUIT_STATE_VALUES[state],
        opened: this.circuitOpens,
        rejected: this.circuitRejections,
      },
      client_disconnects: { ...this.disconnects },
    };
  }
}
