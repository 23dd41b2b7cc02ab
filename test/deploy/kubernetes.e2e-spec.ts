/**
 * deploy/kubernetes/, parsed (yaml) and held to the deployment rules: probes on the right routes, a grace period
 * longer than preStop plus the drain, the restricted security context with writable volumes only for the cache and
 * /tmp, and resources, Service, HPA and PDB that point at the Deployment.
 */
import { readdirSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { DockerfileParser } from 'dockerfile-ast';
import { appVariables, drainSeconds, readRepoFile, repoPath } from './support/deploy';

type Doc = Record<string, any>;
const DIR = repoPath('deploy', 'kubernetes');
const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'));
const docs: Array<{ file: string; doc: Doc }> = files.flatMap((file) =>
  parseAllDocuments(readRepoFile('deploy', 'kubernetes', file)).map((d) => {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
    return { file, doc: d.toJS() as Doc };
  }),
);
const ofKind = (kind: string) => docs.filter((d) => d.doc?.kind === kind);
const one = (kind: string): Doc => {
  const found = ofKind(kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0].doc;
};

const deployment = one('Deployment');
const configMap = one('ConfigMap');
const secret = one('Secret');
const service = one('Service');
const hpa = one('HorizontalPodAutoscaler');
const pdb = one('PodDisruptionBudget');
const pod = deployment.spec.template.spec;
const container = pod.containers[0];
const config: Record<string, string> = configMap.data;

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Seconds a preStop hook pauses: `sleep N` as an exec command, or the native sleep action. */
function preStopSeconds(): number {
  const preStop = container.lifecycle?.preStop ?? {};
  if (preStop.sleep) return Number(preStop.sleep.seconds);
  const command: string[] = preStop.exec?.command ?? [];
  const m = /(?:^|\s)sleep\s+(\d+)/.exec(command.join(' '));
  return m ? Number(m[1]) : 0;
}

describe('deploy/kubernetes', () => {
  it('holds a Deployment, Service, ConfigMap, HPA (autoscaling/v2), PDB (policy/v1) and a Secret example', () => {
    expect(deployment.apiVersion).toBe('apps/v1');
    expect(service.apiVersion).toBe('v1');
    expect(configMap.apiVersion).toBe('v1');
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(pdb.apiVersion).toBe('policy/v1');
    expect(ofKind('Secret').map((d) => d.file)).toEqual(['secret.example.yaml']);
  });

  it('applies every manifest with kustomize except the Secret example', () => {
    const kustomization = docs.find((d) => d.file === 'kustomization.yaml')!.doc;
    const manifests = [...new Set(docs.filter((d) => d.doc.kind !== 'Kustomization').map((d) => d.file))];
    expect([...kustomization.resources].sort()).toEqual(
      manifests.filter((f) => f !== 'secret.example.yaml').sort(),
    );
  });

  describe('Deployment', () => {
    it('probes liveness on /health/live, readiness on /health/ready, and has a startup probe', () => {
      expect(container.livenessProbe.httpGet.path).toBe('/health/live');
      expect(container.readinessProbe.httpGet.path).toBe('/health/ready');
      expect(['/health/live', '/health/ready']).toContain(container.startupProbe.httpGet.path);
      // Enough room to boot (load the program state, open the disk cache) before liveness may restart the pod.
      const budget = container.startupProbe.periodSeconds * container.startupProbe.failureThreshold;
      expect(budget).toBeGreaterThanOrEqual(30);
    });

    it('probes the port the app listens on (PORT in the ConfigMap)', () => {
      const ports: Array<{ name: string; containerPort: number }> = container.ports;
      for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
        const port = container[probe].httpGet.port;
        const resolved = typeof port === 'number' ? port : ports.find((p) => p.name === port)?.containerPort;
        expect({ probe, port: resolved }).toEqual({ probe, port: Number(config.PORT) });
      }
    });

    it('gives a terminating pod more time than preStop plus the drain', () => {
      const preStop = preStopSeconds();
      const drain = drainSeconds(config);
      expect(preStop).toBeGreaterThan(0);
      expect(drain).toBeGreaterThan(0);
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(preStop + drain);
    });

    it('runs restricted: non-root numeric user (the image USER), seccomp, no privilege, read-only root', () => {
      const userLine = DockerfileParser.parse(readRepoFile('Dockerfile'))
        .getInstructions()
        .filter((i) => i.getKeyword() === 'USER')
        .at(-1)!
        .getArgumentsContent()!;
      const [uid, gid] = userLine.split(':').map(Number);
      expect(pod.securityContext).toMatchObject({
        runAsNonRoot: true,
        runAsUser: uid,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      if (gid !== undefined) expect(pod.securityContext.runAsGroup).toBe(gid);
      const sc = container.securityContext;
      expect(sc).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      expect(sc.privileged ?? false).toBe(false);
      expect(sc.capabilities.add ?? []).toEqual([]);
      expect(sc.runAsUser ?? uid).toBeGreaterThan(0);
      expect(pod.hostNetwork ?? false).toBe(false);
      expect(pod.automountServiceAccountToken).toBe(false);
    });

    it('mounts writable volumes only for the disk cache and /tmp, and the cache fits its volume', () => {
      const mounts: Array<{ name: string; mountPath: string; readOnly?: boolean }> = container.volumeMounts;
      const writable = mounts.filter((m) => !m.readOnly);
      expect(writable.map((m) => m.mountPath).sort()).toEqual(['/app/.cache', '/tmp']);
      const volumes: Doc[] = pod.volumes;
      for (const mount of writable) {
        const volume = volumes.find((v) => v.name === mount.name)!;
        expect(volume.emptyDir ?? volume.persistentVolumeClaim ?? volume.ephemeral).toBeDefined();
      }
      expect(config.CACHE_DIR.startsWith('/app/.cache/')).toBe(true);
      const cacheVolume = volumes.find(
        (v) => v.name === writable.find((m) => m.mountPath === '/app/.cache')!.name,
      )!;
      if (cacheVolume.emptyDir?.sizeLimit) {
        const limit = /^(\d+)Gi$/.exec(cacheVolume.emptyDir.sizeLimit);
        expect(limit).not.toBeNull();
        // The kubelet evicts a pod whose emptyDir outgrows sizeLimit; the disk tier's bound stays below it.
        expect(Number(config.CACHE_DISK_SIZE)).toBeLessThan(Number(limit![1]) * 1024 ** 3);
      }
    });

    it('requests and limits CPU and memory', () => {
      expect(container.resources.requests).toEqual({ cpu: expect.anything(), memory: expect.anything() });
      expect(container.resources.limits.memory).toBeDefined();
      expect(container.resources.limits.cpu).toBeDefined();
    });

    it('takes its environment from the ConfigMap and the Secret, and runs a pinned image', () => {
      const from: Doc[] = container.envFrom;
      expect(from.map((f) => f.configMapRef?.name).filter(Boolean)).toEqual([configMap.metadata.name]);
      expect(from.map((f) => f.secretRef?.name).filter(Boolean)).toEqual([secret.metadata.name]);
      expect(container.image).toMatch(/:(\d+\.\d+\.\d+)$|@sha256:[a-f0-9]{64}$/);
    });

    it('rolls out without taking capacity away', () => {
      expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
      expect(matches(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels)).toBe(
        true,
      );
    });
  });

  it('ConfigMap: only variables the app reads, no secret, Redis as an existing service, one worker per pod', () => {
    const known = appVariables();
    for (const name of Object.keys(config))
      expect({ name, read: known.has(name) }).toEqual({ name, read: true });
    expect(Object.keys(config).filter((k) => /KEY|TOKEN|SECRET|PASSW/.test(k))).toEqual([]);
    expect(config.REDIS_URL).toMatch(/^redis:\/\/[a-z0-9.-]+:\d+$/);
    expect(config.WORKERS).toBe('1');
  });

  it('Secret example: keys the app reads, and no real value', () => {
    const values: Record<string, string> = { ...(secret.stringData ?? {}), ...(secret.data ?? {}) };
    expect(Object.keys(values)).toContain('OPENAI_API_KEY');
    for (const [name, value] of Object.entries(values)) {
      expect(appVariables().has(name)).toBe(true);
      expect({ name, value }).toEqual({ name, value: '' });
    }
  });

  it('Service selects the pods and targets the named container port', () => {
    expect(matches(service.spec.selector, deployment.spec.template.metadata.labels)).toBe(true);
    for (const port of service.spec.ports) {
      expect(container.ports.map((p: Doc) => p.name)).toContain(port.targetPort);
    }
  });

  it('HPA scales the Deployment, from at least two replicas', () => {
    expect(hpa.spec.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: deployment.metadata.name,
    });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
    expect(hpa.spec.metrics.length).toBeGreaterThan(0);
  });

  it('PDB covers the pods and always leaves one serving', () => {
    expect(matches(pdb.spec.selector.matchLabels, deployment.spec.template.metadata.labels)).toBe(true);
    const min = hpa.spec.minReplicas as number;
    const available = pdb.spec.minAvailable ?? min - (pdb.spec.maxUnavailable as number);
    expect(available).toBeGreaterThanOrEqual(1);
    expect(available).toBeLessThan(min);
  });
});
