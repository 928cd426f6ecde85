/**
 * The backends every conformance test runs against. A new backend is one
 * line here: its name and the endpoint for a fresh, empty store in `dir`.
 */
export interface TestBackend {
  name: string;
  endpoint(dir: string): string;
}

export const BACKENDS: TestBackend[] = [
  { name: "sqlite", endpoint: (dir) => `sqlite://${dir}/state.db` },
  { name: "memory", endpoint: () => "memory://" },
];
