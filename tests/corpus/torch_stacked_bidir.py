import torch.nn as nn

# 2-layer bidirectional encoder, batch_first; and an LSTM I was comparing against
encoder = nn.GRU(8, 16, num_layers=2, bidirectional=True, batch_first=True)
baseline = nn.LSTM(8, 16)
