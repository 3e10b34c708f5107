"""The same network in PyTorch CPU, when it is installed: a typical training loop and inference."""
import numpy as np

from .candidates import LEARNING_RATE


def import_torch(wanted):
    """(torch, None) or (None, why the PyTorch column is left out)."""
    if not wanted:
        return None, "PyTorch column turned off (--no-torch)"
    try:
        import torch
    except ImportError:
        return None, "PyTorch is not installed: column skipped (pip install torch, the CPU build)"
    return torch, None


class TorchTrainer:
    """The same network in PyTorch CPU: a typical loop, uint8 images scaled per batch like ours."""

    def __init__(self, torch, layer_sizes, dtype, X, y, batch_size, threads):
        self.torch, self.threads = torch, threads
        self.torch_dtype = {"float32": torch.float32, "float64": torch.float64}[np.dtype(dtype).name]
        layers = []
        for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
            layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
        self.model = torch.nn.Sequential(*layers[:-1]).to(self.torch_dtype)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LEARNING_RATE)
        self.X = torch.from_numpy(X)  # uint8, shared with NumPy: no copy
        self.y = torch.from_numpy(y.astype(np.int64))
        self.batch_size = len(X) if batch_size is None else batch_size
        self.scale = 1.0 / 255.0
        self.epoch = 0

    def run(self, n_rows=None):
        torch = self.torch
        torch.set_num_threads(self.threads)
        n = len(self.X) if n_rows is None else n_rows
        generator = torch.Generator().manual_seed(self.epoch)
        order = torch.randperm(n, generator=generator)
        loss_sum, n_correct = 0.0, 0
        self.model.train()
        for start in range(0, n, self.batch_size):
            rows = order[start:start + self.batch_size]
            batch = self.X[rows].to(self.torch_dtype).mul_(self.scale)
            labels = self.y[rows]
            logits = self.model(batch)
            loss = torch.nn.functional.cross_entropy(logits, labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum += loss.item() * len(rows)
            n_correct += int((logits.argmax(dim=1) == labels).sum())
        self.epoch += 1
        return loss_sum, n_correct

    def warm_up(self, n_rows):
        self.run(n_rows)


class TorchInference:
    """Forward-only probabilities over X in PyTorch, batch by batch."""

    def __init__(self, torch, layer_sizes, dtype, X, batch_size, threads):
        self.trainer = TorchTrainer(torch, layer_sizes, dtype, X, np.zeros(len(X), np.int64), batch_size, threads)

    def run(self, n_rows=None):
        trainer, torch = self.trainer, self.trainer.torch
        torch.set_num_threads(trainer.threads)
        n = len(trainer.X) if n_rows is None else n_rows
        trainer.model.eval()
        with torch.inference_mode():
            for start in range(0, n, trainer.batch_size):
                batch = trainer.X[start:start + trainer.batch_size].to(trainer.torch_dtype).mul_(trainer.scale)
                torch.softmax(trainer.model(batch), dim=1)

    def warm_up(self, n_rows):
        self.run(n_rows)
