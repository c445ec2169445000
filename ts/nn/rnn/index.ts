// Recurrent modules and cells (nb.nn.RNN/LSTM/GRU, nb.nn.*Cell); the packing utilities are
// nb.nn.utils.rnn.
export { RNNBase, RNN, LSTM, GRU, type RNNMode, type RNNOptions } from './rnn.js';
export { RNNCell, LSTMCell, GRUCell } from './cells.js';
export { gruCellStep, lstmCellStep, rnnReluCellStep, rnnTanhCellStep } from './step.js';
