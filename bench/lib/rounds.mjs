// Runs a workload in several rounds and keeps each figure's best round: interference from
// other work only slows a run down, so the fastest round is the closest to the library's own
// speed. Every library gets the same rule; each round's figures stay in the JSON.
import { workloadConfig } from './config.mjs';
import { ATTENTION_WORKLOADS, mergeAttentionRounds } from './attention.mjs';
import { CNN_WORKLOADS, mergeCnnRounds } from './cnn.mjs';

/** Which children to run: workload-major, alternating library order between rounds. */
export function plan(config, workloads, libraries) {
  const out = [];
  for (const workload of workloads) {
    const { rounds = 1, singleRound = [] } = workloadConfig(config, workload);
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 ? [...libraries].reverse() : libraries;
      for (const library of order) {
        if (round === 0 || !singleRound.includes(library)) out.push({ workload, library, round });
      }
    }
  }
  return out;
}

/** Largest value of each numeric memory field, smallest busy share: the worst case wins. */
function mergeSideInfo(runs) {
  const memory = {};
  for (const r of runs) {
    for (const [k, v] of Object.entries(r.memory ?? {})) {
      if (typeof v === 'number') memory[k] = Math.max(memory[k] ?? -Infinity, v);
    }
  }
  const busy = Math.min(...runs.map((r) => r.cpu?.busy ?? Infinity));
  const wallSeconds = runs.reduce((s, r) => s + (r.cpu?.wallSeconds ?? 0), 0);
  return { memory, cpu: { wallSeconds, busy } };
}

/** One result from a workload's rounds, in the same shape a single round has. */
export function mergeRounds(workload, runs) {
  if (runs.length === 1) return runs[0];
  const merged = { ...runs[0], ...mergeSideInfo(runs), rounds: runs.length };
  if (ATTENTION_WORKLOADS.includes(workload)) return mergeAttentionRounds(workload, runs, merged);
  if (CNN_WORKLOADS.includes(workload)) return mergeCnnRounds(runs, merged);
  if (workload === 'matmul') {
    merged.matmul = runs[0].matmul.map((_, i) => {
      const entries = runs.map((r) => r.matmul[i]);
      const best = entries.reduce((a, b) => (b.gflops > a.gflops ? b : a));
      const kernels = entries.map((e) => e.kernelGflops).filter((v) => v !== undefined);
      return {
        ...best,
        ...(kernels.length ? { kernelGflops: Math.max(...kernels) } : {}),
        rounds: entries.map((e) => e.gflops),
      };
    });
  } else if (workload === 'train') {
    const trains = runs.map((r) => r.train);
    const best = trains.reduce((a, b) => (b.samplesPerSec > a.samplesPerSec ? b : a));
    merged.train = { ...best, rounds: trains.map((t) => t.samplesPerSec) };
  } else {
    throw new Error(`mergeRounds: ${workload} runs once`);
  }
  return merged;
}
