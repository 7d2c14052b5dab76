"""Small seeded models for the Core ML tests, written as a user would upload them: a TorchScript
CNN (NCHW), a Keras functional CNN (NHWC, .keras) and the same Keras model as a SavedModel,
each with a three-line class labels file beside it."""

from __future__ import annotations

from pathlib import Path

LABELS = ("cat", "dog", "bird")


def torchscript_dir(folder: Path) -> Path:
    """``model.pth`` (3x16x16 RGB in, 3 scores out) and ``labels.txt``."""
    import torch

    from models.export import to_torchscript

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(4, 3),
    )
    to_torchscript(net, (torch.zeros(1, 3, 16, 16),), folder / "model.pth")
    return _with_labels(folder)


def keras_model(seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    image = keras.Input((16, 16, 3), name="input_1")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(image)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(image, keras.layers.Dense(3, activation="softmax", name="probs")(x))


def keras_dir(folder: Path) -> Path:
    """``model.keras`` (input ``input_1``, 16x16x3) and ``labels.txt``."""
    keras_model().save(str(folder / "model.keras"))
    return _with_labels(folder)


def saved_model_dir(folder: Path) -> Path:
    """The Keras model exported as a SavedModel under ``folder/model``, and ``labels.txt``."""
    keras_model().export(str(folder / "model"), verbose=False)
    return _with_labels(folder)


def _with_labels(folder: Path) -> Path:
    (folder / "labels.txt").write_text("\n".join(LABELS) + "\n")
    return folder
