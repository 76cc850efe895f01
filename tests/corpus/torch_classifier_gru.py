"""Text classifier: embedding -> GRU -> linear on the last state."""
import torch
import torch.nn as nn


class SentimentClassifier(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim, num_classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.gru = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.fc = nn.Linear(hidden_dim, num_classes)

    def forward(self, tokens):
        emb = self.embedding(tokens)          # (B, T, E): tokens must be integer ids
        _, h_n = self.gru(emb)
        return self.fc(h_n[-1])
