// One seeded training run that the browser tests execute in Node, in a page and in a worker,
// then compare bit for bit: synthetic 3-class data, an MLP with LayerNorm, GELU, Tanh and
// Dropout (so the wasm RNG and the vectorised exp/erf/tanh all take part), Adam, 3 epochs.
export const CONFIG = { seed: 7, epochs: 3, samples: 256, batchSize: 32 };

/** The model, built from the global seed. */
export function makeModel(nb) {
  return new nb.nn.Sequential(
    new nb.nn.Linear(8, 32),
    new nb.nn.LayerNorm(32),
    new nb.nn.GELU(),
    new nb.nn.Dropout(0.1),
    new nb.nn.Linear(32, 16),
    new nb.nn.Tanh(),
    new nb.nn.Linear(16, 3),
  );
}

/**
 * Trains and returns the model, the running loss after every batch, the epoch history and
 * the final weights as safetensors bytes. `callbacks(loader)` adds fit callbacks.
 */
export async function trainSmall(nb, { config = CONFIG, callbacks = () => [] } = {}) {
  nb.manualSeed(config.seed);
  const x = nb.randn([config.samples, 8]);
  const labels = x.matmul(nb.randn([8, 3])).argmax(1);
  const model = makeModel(nb);
  const trainLoader = new nb.data.DataLoader(new nb.data.TensorDataset(x, labels), {
    batchSize: config.batchSize,
    shuffle: true,
    seed: config.seed,
  });
  const losses = [];
  const { history } = await nb.train.fit(model, {
    trainLoader,
    lossFn: new nb.nn.CrossEntropyLoss(),
    optimizer: new nb.optim.Adam(model.parameters(), { lr: 0.01 }),
    epochs: config.epochs,
    metrics: ['accuracy'],
    progress: 'silent',
    callbacks: [
      { onBatchEnd: (_b, logs) => void losses.push(logs.loss) },
      ...callbacks(trainLoader),
    ],
  });
  const sd = model.stateDict();
  const weights = nb.io.saveSafetensors(sd);
  Object.values(sd).forEach((t) => t.dispose());
  return { model, losses, history, weights };
}
