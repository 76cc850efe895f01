import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class KerasGRUCell:
    """Port of keras.layers.GRUCell(units, reset_after=True) to NumPy.

    kernel: (input_dim, 3*units), recurrent_kernel: (units, 3*units), bias: (2, 3*units)
    gate order in the kernels is z, r, h -- same as Keras.
    """

    def __init__(self, units, input_dim):
        self.units = units
        limit = np.sqrt(6.0 / (input_dim + units))  # glorot_uniform
        self.kernel = np.random.uniform(-limit, limit, (input_dim, 3 * units))
        q, _ = np.linalg.qr(np.random.randn(3 * units, units))  # orthogonal, like Keras
        self.recurrent_kernel = q.T
        self.bias = np.random.uniform(-0.05, 0.05, (2, 3 * units))

    def __call__(self, inputs, states):
        h_tm1 = states[0] if isinstance(states, (list, tuple)) else states
        input_bias, recurrent_bias = self.bias[0], self.bias[1]

        matrix_x = inputs @ self.kernel + input_bias
        x_z, x_r, x_h = np.split(matrix_x, 3, axis=-1)
        matrix_inner = h_tm1 @ self.recurrent_kernel + recurrent_bias
        recurrent_z, recurrent_r, recurrent_h = np.split(matrix_inner, 3, axis=-1)

        z = sigmoid(x_z + recurrent_z)
        r = sigmoid(x_r + recurrent_r)
        hh = np.tanh(x_h + r * recurrent_h)
        h = z * h_tm1 + (1 - z) * hh
        return h, [h]
