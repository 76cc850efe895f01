"""The diverging GRU regression of diverge.py, with clip_grad_norm_(max_norm=1.0): it stays
finite."""
from diverge import main

if __name__ == "__main__":
    main(clip=1.0, lr=2.0, steps=40)
