import { Registry } from 'prom-client';
import {
  type CircuitListener,
  type CircuitStateName,
  type ObservableCircuit,
  ReliabilityMetrics,
} from './reliability-metrics';

/** A breaker stand-in whose state the test sets and whose events it fires. */
function fakeCircuit(): ObservableCircuit & { state: CircuitStateName; listeners: CircuitListener[] } {
  const circuit = {
    state: 'closed' as CircuitStateName,
    listeners: [] as CircuitListener[],
    get circuit() {
      return circuit.state;
    },
    addListener(listener: CircuitListener) {
      circuit.listeners.push(listener);
    },
  };
  return circuit;
}

async function lines(registry: Registry): Promise<string[]> {
  return (await registry.metrics()).split('\n');
}

describe('ReliabilityMetrics', () => {
  let registry: Registry;
  let reliability: ReliabilityMetrics;

  beforeEach(() => {
    registry = new Registry();
    reliability = new ReliabilityMetrics(registry);
  });

  it('exposes every series at zero before anything happens, so rates and alerts have a baseline', async () => {
    expect(await lines(registry)).toEqual(
      expect.arrayContaining([
        'admission_shed_total{reason="queue_full"} 0',
        'admission_shed_total{reason="queue_timeout"} 0',
        'admission_draining_refused_total 0',
        'admission_in_flight 0',
        'admission_queued 0',
        'client_disconnects_total{route="predict"} 0',
        'client_disconnects_total{route="stream"} 0',
        'client_disconnects_total{route="batch"} 0',
        'circuit_breaker_opened_total 0',
        'circuit_breaker_rejected_total 0',
        '# TYPE circuit_breaker_state gauge',
      ]),
    );
  });

  it('counts sheds by reason, draining refusals and disconnects by route, in Prometheus and the summary', async () => {
    reliability.shed('queue_full');
    reliability.shed('queue_full');
    reliability.shed('queue_timeout');
    reliability.refusedDraining();
    reliability.clientDisconnected('stream');
    reliability.clientDisconnected('stream');
    reliability.clientDisconnected('batch');
    expect(await lines(registry)).toEqual(
      expect.arrayContaining([
        'admission_shed_total{reason="queue_full"} 2',
        'admission_shed_total{reason="queue_timeout"} 1',
        'admission_draining_refused_total 1',
        'client_disconnects_total{route="predict"} 0',
        'client_disconnects_total{route="stream"} 2',
        'client_disconnects_total{route="batch"} 1',
      ]),
    );
    expect(reliability.summary()).toMatchObject({
      shed: { queue_full: 2, queue_timeout: 1 },
      refused_draining: 1,
      client_disconnects: { predict: 0, stream: 2, batch: 1 },
    });
  });

  it('reads admission slots and the queue at scrape time', async () => {
    const admission = { inFlight: 3, waiting: 1 };
    reliability.watchAdmission(admission);
    expect(await lines(registry)).toEqual(
      expect.arrayContaining(['admission_in_flight 3', 'admission_queued 1']),
    );
    admission.inFlight = 0;
    admission.waiting = 0;
    expect(await lines(registry)).toEqual(
      expect.arrayContaining(['admission_in_flight 0', 'admission_queued 0']),
    );
    expect(reliability.summary()).toMatchObject({ in_flight: 0, queued: 0 });
  });

  it('publishes the circuit state as 0/1/2 and counts openings and refusals, once per breaker', async () => {
    const circuit = fakeCircuit();
    reliability.watchCircuit(circuit);
    reliability.watchCircuit(circuit);
    expect(circuit.listeners).toHaveLength(1);
    expect(await lines(registry)).toContain('circuit_breaker_state 0');

    circuit.state = 'open';
    circuit.listeners[0].opened?.();
    circuit.listeners[0].rejected?.();
    circuit.listeners[0].rejected?.();
    expect(await lines(registry)).toEqual(
      expect.arrayContaining([
        'circuit_breaker_state 1',
        'circuit_breaker_opened_total 1',
        'circuit_breaker_rejected_total 2',
      ]),
    );
    circuit.state = 'half-open';
    expect(await lines(registry)).toContain('circuit_breaker_state 2');
    expect(reliability.summary().circuit).toEqual({
      state: 'half-open',
      state_value: 2,
      opened: 1,
      rejected: 2,
    });
  });
});
