const fs = require('fs');
const f = process.argv[2];
const p = JSON.parse(fs.readFileSync(f));
const self = new Map();
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const dt = p.timeDeltas;
let total = 0;
const cnt = new Map();
for (let i = 0; i < p.samples.length; i++) {
  cnt.set(p.samples[i], (cnt.get(p.samples[i]) || 0) + dt[i]);
  total += dt[i];
}
for (const [id, t] of cnt) {
  const n = byId.get(id);
  const cf = n.callFrame;
  const k = cf.functionName + ' ' + cf.url.split('/').slice(-2).join('/') + ':' + cf.lineNumber;
  self.set(k, (self.get(k) || 0) + t);
}
const arr = [...self].sort((a, b) => b[1] - a[1]).slice(0, +process.argv[3] || 25);
console.log('total ms', (total / 1000).toFixed(0));
for (const [k, t] of arr) console.log((t / 1000).toFixed(1).padStart(8), k);
