"""A CNN on scikit-learn's 8x8 digits: test accuracy, the confusion matrix and the learned
first-layer 3x3 kernels (16 of them, shared across every position of the image: weight sharing).

    python examples/cnn_digits.py [--quick]
"""

import deepkern as dk
import numpy as np
from _common import cli, pyplot, save  # first: sets thread env vars before numpy loads
from deepkern.demo import build_cnn, load_digits_split, train_cnn


def confusion_matrix(y_true, y_pred, k=10):
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def main(quick=False, out_dir="examples/out"):
    dk.set_num_threads(1)  # tiny kernels: one thread is fastest (see the main job's --threads)
    data = load_digits_split(seed=0)
    model = build_cnn(seed=0)
    epochs = 1 if quick else 20
    h = train_cnn(model, data, epochs=epochs, seed=0, progress=False)
    yte, pred = data[3], h["test_pred"]
    acc = float((pred == yte).mean())
    cm = confusion_matrix(yte, pred)
    print(f"test accuracy {acc * 100:.2f}% after {epochs} epochs, {np.mean(h['epoch_time']):.2f} s per epoch")
    print("confusion matrix (rows: true digit, columns: predicted):")
    print(cm)

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    ep = np.arange(1, epochs + 1)
    axes[0].plot(ep, h["train_acc"], "o-", label="train")
    axes[0].plot(ep, h["test_acc"], "o-", label="test")
    axes[0].set(xlabel="epoch", ylabel="accuracy", title=f"digits CNN: test accuracy {acc * 100:.1f}%")
    axes[0].legend()
    im = axes[1].imshow(cm, cmap="Blues")
    for i in range(10):
        for j in range(10):
            if cm[i, j]:
                axes[1].text(
                    j,
                    i,
                    cm[i, j],
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if cm[i, j] > cm.max() / 2 else "black",
                )
    axes[1].set(
        xlabel="predicted", ylabel="true", title="confusion matrix (test set)", xticks=range(10), yticks=range(10)
    )
    fig.colorbar(im, ax=axes[1], shrink=0.8)
    axes[2].axis("off")
    axes[2].set_title("first-layer kernels (16 x 3x3)")
    w = model.layers[0].weight.value[:, 0]  # (16, 3, 3)
    for k in range(16):
        ax = axes[2].inset_axes([(k % 4) * 0.25 + 0.02, 0.75 - (k // 4) * 0.25 + 0.02, 0.21, 0.21])
        lim = np.abs(w[k]).max()
        ax.imshow(w[k], cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_xticks([])
        ax.set_yticks([])
    save(fig, out_dir, "cnn_digits.png")
    return {"test_acc": acc, "confusion": cm, "epoch_time": float(np.mean(h["epoch_time"]))}


if __name__ == "__main__":
    main(**cli(__doc__))
