import torch.nn as nn

cell = nn.GRUCell(6, 10)
criterion = nn.MSELoss()
