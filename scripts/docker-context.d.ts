/** Types of scripts/docker-context.js for the TypeScript checks under test/deploy/. */
export interface DockerignorePattern {
  source: string;
  exclusion: boolean;
  regex: RegExp;
}

export function compilePattern(line: string): DockerignorePattern;
export function readDockerignore(dir: string): DockerignorePattern[];
export function isExcluded(patterns: DockerignorePattern[], relPath: string): boolean;
export function listContext(root: string, patterns?: DockerignorePattern[]): string[];
export function copyContext(src: string, dest: string): void;
