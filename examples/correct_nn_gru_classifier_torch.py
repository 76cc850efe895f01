"""A sentiment classifier with an nn.GRU inside (batch_first), and a bare nn.GRUCell: grudiag
checks the recurrent parts, not the classifier head.

Expected categories: none
"""
import torch
from torch import nn


class SentimentClassifier(nn.Module):
    def __init__(self, vocab_size=50, embed_dim=5, hidden_dim=7, n_classes=2):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.head = nn.Linear(hidden_dim, n_classes)

    def forward(self, tokens):
        _, h_n = self.rnn(self.embed(tokens))
        return self.head(h_n[-1])


decoder_cell = nn.GRUCell(5, 7)

if __name__ == "__main__":
    model = SentimentClassifier()
    print(model(torch.randint(0, 50, (3, 6))).shape)
