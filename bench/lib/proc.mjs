// CPU time of processes from /proc (Linux), and a description of the machine.
import { readdirSync, readFileSync } from "node:fs";
import { cpus, loadavg, release, type as osType } from "node:os";

const CLK_TCK = 100; // USER_HZ on Linux: /proc times are in 10 ms ticks

/** PIDs of this node process's children whose command name matches `pattern`. */
export function childPids(pattern) {
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const ppid = Number(stat.slice(close + 2).split(" ")[1]);
      if (ppid === process.pid && pattern.test(comm)) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

/** utime + stime of `pids` (all their threads), in milliseconds. */
export function cpuMs(pids) {
  let ticks = 0;
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
  }
  return (ticks * 1000) / CLK_TCK;
}

/** This node process's own CPU, ms. */
export const selfCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

export const load = () => loadavg().map((x) => Number(x.toFixed(2)));

export function machine(extra = {}) {
  const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpus()[0]?.model ?? "?";
  let os = `${osType()} ${release()}`;
  try {
    const pretty = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1];
    if (pretty) os = `${pretty}, kernel ${release()}`;
  } catch {
    // no os-release
  }
  return { date: new Date().toISOString(), nproc: cpus().length, cpu: model, os, node: process.version, loadavg: load(), ...extra };
}
