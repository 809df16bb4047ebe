'use strict';
// Preloaded (`node --expose-gc --require`) into the app the bench loads, and nothing else: on SIGUSR2 it
// runs a full garbage collection and writes process.memoryUsage() to BENCH_MEMORY_FILE, numbered, so the
// bench reads the live heap and the RSS between two runs of load, with the heap's limit (what V8 sized
// it to) and the part of the RSS that is mapped files (the code of node and its addons). The app itself
// is unchanged.
const { readFileSync, writeFileSync } = require('node:fs');
const { getHeapStatistics } = require('node:v8');

const rssFileBytes = () =>
  Number(/^RssFile:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]) * 1024;

let sample = 0;
process.on('SIGUSR2', () => {
  if (typeof globalThis.gc === 'function') globalThis.gc();
  sample += 1;
  const memory = process.memoryUsage();
  const heapSizeLimit = getHeapStatistics().heap_size_limit;
  writeFileSync(
    process.env.BENCH_MEMORY_FILE,
    JSON.stringify({ sample, ...memory, heapSizeLimit, rssFile: rssFileBytes() }),
  );
});
