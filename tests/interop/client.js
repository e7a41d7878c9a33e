// A vecdb client that knows nothing but the proto: create a collection, upsert, search.
// Usage: node client.js ADDRESS PROTO_ROOT COLLECTION; prints one JSON line.
'use strict';
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const path = require('path');

const [address, protoRoot, collection] = process.argv.slice(2);
const definition = protoLoader.loadSync(path.join(protoRoot, 'vecdb/v1/vecdb.proto'), {
  includeDirs: [protoRoot], keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true,
});
const { VectorService } = grpc.loadPackageDefinition(definition).vecdb.v1;
const client = new VectorService(address, grpc.credentials.createInsecure());
const call = (method, request) => new Promise((resolve, reject) =>
  client[method](request, (error, response) => (error ? reject(error) : resolve(response))));

async function main() {
  await call('CreateCollection', {
    name: collection, dim: 3, metric: 'METRIC_L2',
    schema: [{ name: 'colour', type: 'ATTRIBUTE_TYPE_KEYWORD' }],
  });
  // row form, as most languages will send it
  await call('Upsert', {
    collection,
    points: [
      { id: 'red', vector: [1, 0, 0], attributes: { colour: { keyword_value: 'red' } } },
      { id: 'green', vector: [0, 1, 0], attributes: { colour: { keyword_value: 'green' } } },
    ],
  });
  // column form: float32 little-endian bytes
  const packed = Buffer.from(new Float32Array([0, 0, 1, 0.9, 0.1, 0]).buffer);
  await call('Upsert', { collection, batch: { ids: ['blue', 'reddish'], vectors: packed } });
  const nearest = await call('Search', { collection, vector: [1, 0, 0], k: 3 });
  const filtered = await call('Search', {
    collection, vector: [1, 0, 0], k: 3, with_attributes: true,
    filter: { condition: { field: 'colour', equals: { keyword_value: 'green' } } },
  });
  let badStatus = null;
  try {
    await call('Search', { collection, vector: [1, 0], k: 3 });
  } catch (error) {
    badStatus = { code: grpc.status[error.code], details: error.details };
  }
  console.log(JSON.stringify({
    nearest: nearest.results.map((r) => [r.id, r.score]),
    filtered: filtered.results.map((r) => [r.id, r.attributes.colour.keyword_value]),
    badStatus,
  }));
  client.close();
}

main().catch((error) => { console.error(error); process.exit(1); });
