'use strict';
// What run.js and http-floor.js both read of a server: its CPU time and
// resident set from /proc, and the median of repeated figures.

const fs = require('node:fs');
const { spawnSync } = require('node:child_process');

// /proc counts CPU time in clock ticks of this many per second.
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

// The median of the finite numbers in `values` (null if there are none).
function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

// CPU time of a whole process (all its threads, live and exited), in ticks,
// and its resident set, in KiB; null once the process is gone.
function sampleProcess(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /^VmRSS:\s+(\d+) kB/m.exec(status);
    const threads = /^Threads:\s+(\d+)/m.exec(status);
    return {
      ticks,
      rssKiB: rss ? Number(rss[1]) : null,
      threads: threads ? Number(threads[1]) : null,
      at: performance.now(),
    };
  } catch {
    return null;
  }
}

module.exports = { CLK_TCK, median, sampleProcess };
