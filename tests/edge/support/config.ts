// The test gateway configuration: tests/edge/gateway.test.toml with its
// {{...}} placeholders filled in with the ports of this run's servers.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const template = fileURLToPath(new URL("../gateway.test.toml", import.meta.url));

export interface ConfigValues {
  ORIGIN: string;
  FLAKY: string;
  DEAD: string;
  JWKS: string;
  HS_SECRET: string;
}

/** gateway.test.toml with every placeholder replaced; throws on an unknown or unfilled one. */
export function testConfig(values: ConfigValues): string {
  const text = readFileSync(template, "utf8").replace(/\{\{([A-Z_]+)\}\}/g, (_, name: string) => {
    const value = (values as unknown as Record<string, string | undefined>)[name];
    if (value === undefined) throw new Error(`gateway.test.toml: no value for {{${name}}}`);
    return value;
  });
  return text;
}

/** Names of the `[[routes]]` of a TOML config, in order (enough for the files we write). */
export function routeNames(toml: string): string[] {
  return [...toml.matchAll(/^\[\[routes\]\]\s*\r?\n\s*name\s*=\s*"([^"]+)"/gm)].map((m) => m[1] ?? "");
}
