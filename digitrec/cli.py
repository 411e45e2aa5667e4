"""Command-line interface (see `python -m digitrec --help`)."""

from __future__ import annotations

import argparse
import sys
import types
import typing
from dataclasses import MISSING, fields
from pathlib import Path

from digitrec.config import TrainingConfig
from digitrec.errors import DigitrecError


def _train(args) -> int:
    from digitrec import card as model_card
    from digitrec import registry
    from digitrec.jobs import run_training

    config = config_from_args(args)
    directory = args.models_dir
    folder = run_training(config, directory, verbose=1, mnist_folder=args.mnist_dir,
                          version=args.version)
    if folder is None:
        print("trained as a worker; the chief (worker 0) saves the model folder")
        return 0
    print(f"saved {folder}")
    _print_metrics(model_card.read(folder).metrics)
    if args.activate:
        registry.set_active(folder.name, folder.parent)
        print(f"active model is now {folder.name}")
    return 0


def _prepare(args) -> int:
    from digitrec import data
    from digitrec.dataset import prepare_data, save_training_arrays

    config = config_from_args(args)
    training_data = prepare_data(config, data.load_mnist(args.mnist_dir))
    save_training_arrays(training_data, config, args.out)
    print(f"wrote {args.out}: {len(training_data.y_train)} training and {len(training_data.y_val)} "
          f"validation inputs {training_data.counts}")
    return 0


def _fit(args) -> int:
    import json
    import platform

    import keras

    from digitrec.config import config_dict
    from digitrec.dataset import load_training_arrays
    from digitrec.train import train

    config = config_from_args(args)
    training_data = load_training_arrays(args.data, config)
    result = train(config, training_data, verbose=2)
    result.model.save(args.out)
    device = keras.backend.backend()
    if device == "torch":
        import torch

        device += f" on {torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU'}"
    record = {"config": config_dict(config), "history": result.history, "seconds": round(result.seconds, 1),
              "epochs_done": result.epochs_done, "counts": training_data.counts,
              "checksums": training_data.checksums,
              "trained_on": f"Keras {keras.__version__}, {device}, {platform.node()}"}
    Path(f"{args.out}.json").write_text(json.dumps(record, indent=1))
    print(f"wrote {args.out} and {args.out}.json ({result.seconds:.0f} s)")
    return 0


def _adopt(args) -> int:
    from digitrec import card as model_card
    from digitrec.jobs import adopt_candidate

    folder = adopt_candidate(args.model, args.models_dir, args.version, args.mnist_dir)
    print(f"saved {folder}")
    _print_metrics(model_card.read(folder).metrics)
    return 0


def _companions(args) -> int:
    from digitrec import card as model_card
    from digitrec import companion_training

    folder = Path(args.folder)
    model_card.read(folder)  # a model folder, or a clear error before minutes of training
    if args.only == "calibration":
        companion_training.export_image_features(folder)
        companion_training.calibrate_image(folder)
    else:
        companion_training.add_companions(folder, epochs=args.epochs, gate_epochs=args.gate_epochs,
                                          seed=args.seed, only=args.only)
    print(f"updated {folder}: calibration {model_card.read(folder).calibration.image_temperature}")
    return 0


def _average(args) -> int:
    from digitrec import averaging
    from digitrec import card as model_card

    folder = averaging.average_folders(args.folders, version=args.version, directory=args.models_dir,
                                       companions_from=args.companions)
    _print_metrics(model_card.read(folder).metrics)
    return 0


def _split(args) -> int:
    from digitrec import averaging

    print(f"wrote {averaging.split_folder(args.folder, args.net, args.version, args.models_dir)}")
    return 0


def _print_metrics(metrics) -> None:
    """A card's Metrics as `train` prints them."""
    print(f"MNIST test accuracy:          {metrics.mnist_test_accuracy:.4%}")
    if metrics.canvas_accuracy is not None:
        print(f"canvas-drawn pendigits (held-out writers): {metrics.canvas_accuracy:.4%}")


def _load_recognizer(args):
    from digitrec import Recognizer

    return Recognizer.load(args.model)


def _predict(args) -> int:
    import json

    from digitrec.upload import decode_upload

    images, results = [], []
    for path in args.images:  # check every file before loading the model: bad input fails fast
        try:
            images.append(decode_upload(Path(path).read_bytes()))
        except OSError as error:
            raise ValueError(f"{path}: cannot read file ({error.strerror})") from None
        except DigitrecError as error:
            raise ValueError(f"{path}: {error}") from None
    recognizer = _load_recognizer(args)
    for path, prediction in zip(args.images, recognizer.predict_many(images)):
        results.append({"file": str(path), "digit": prediction.digit, "status": prediction.status,
                        "probabilities": None if prediction.probabilities is None
                        else [round(p, 6) for p in prediction.probabilities]})
    if args.json:
        print(json.dumps({"model": recognizer.version, "predictions": results}, indent=2))
        return 0
    for result in results:
        digit = "-" if result["digit"] is None else result["digit"]
        probabilities = "" if result["probabilities"] is None else \
            " ".join(f"{d}:{p:.3f}" for d, p in enumerate(result["probabilities"]))
        print(f"{result['file']}: {digit} ({result['status']}) {probabilities}")
    return 0


def _evaluate(args) -> int:
    from digitrec import data
    from digitrec.dataset import as_model_input, held_out_pendigits, preprocessed_mnist
    from digitrec.evaluate import accuracy_report

    recognizer = _load_recognizer(args)
    print(f"model {recognizer.version} ({recognizer.backend})")
    mnist = preprocessed_mnist(data.load_mnist(args.mnist_dir))
    report = accuracy_report(mnist["y_test"], recognizer.probabilities(as_model_input(mnist["x_test"])))
    print(f"MNIST test accuracy: {report['accuracy']:.4%} of {report['count']}")
    print("  per class: " + " ".join(f"{d}:{a:.4f}" for d, a in enumerate(report["per_class"])))
    try:
        pen = held_out_pendigits()
    except data.DataUnavailableError as error:
        print(f"canvas-drawn pendigits: skipped ({error})")
        return 0
    report = accuracy_report(pen["y"], recognizer.probabilities(as_model_input(pen["x"])))
    print(f"canvas-drawn pendigits, held-out writers 21-30: {report['accuracy']:.4%} of {report['count']}")
    if args.store:
        from digitrec import registry
        from digitrec.evaluate import store_evaluation

        store_evaluation(recognizer.folder, mnist_folder=args.mnist_dir)
        print(f"stored in {recognizer.folder / registry.EVALUATION_FILE}, for the Retrain and Models pages")
    return 0


def _models(args) -> int:
    from digitrec import registry
    from digitrec.card import list_cards

    cards = list_cards()
    if not cards:
        print(f"no models in {registry.models_dir()}")
        return 1
    for card in cards:
        accuracy, canvas = card.metrics.mnist_test_accuracy, card.metrics.canvas_accuracy
        print(f"{'*' if card.active else ' '} {card.version:<32} {card.architecture:<9} "
              f"mnist {accuracy if accuracy is None else f'{accuracy:.4%}'}  "
              f"canvas {canvas if canvas is None else f'{canvas:.4%}'}  "
              f"{'?' if card.parameters is None else card.parameters} params  {card.created}")
    print(f"(* = active; folder {registry.models_dir()})")
    return 0


def training_option(name: str) -> str | None:
    """The `train` option of a TrainingConfig field: --epochs, --no-augment for a switch that is on
    by default, --wide-pens for one that is off; None for a field the CLI leaves out."""
    setting = next(item for item in fields(TrainingConfig) if item.name == name)
    if not setting.metadata.get("cli", True):
        return None
    dashed = name.replace("_", "-")
    if typing.get_type_hints(TrainingConfig)[name] is bool and setting.default is True:
        return f"--no-{dashed}"
    return f"--{dashed}"


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """One option per TrainingConfig field, with the field's default, type and help (config.py)."""
    hints = typing.get_type_hints(TrainingConfig)
    for setting in fields(TrainingConfig):
        option = training_option(setting.name)
        if option is None:
            continue
        assert setting.default is not MISSING, setting.name
        text = setting.metadata.get("help", "").replace("%", "%%")  # argparse formats help with %
        if hints[setting.name] is bool:
            parser.add_argument(option, dest=setting.name, default=setting.default,
                                action="store_false" if setting.default else "store_true",
                                help=f"{'without' if setting.default else 'with'} {text}")
        else:
            kind = hints[setting.name]
            if typing.get_origin(kind) in (typing.Union, types.UnionType):  # int | None: an int or left out
                kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
            parser.add_argument(option, dest=setting.name, type=kind, default=setting.default,
                                help=f"{text} (default: {setting.default})")


def config_from_args(args: argparse.Namespace) -> TrainingConfig:
    """The TrainingConfig the `train` options describe (fields without an option keep their default)."""
    return TrainingConfig(**{setting.name: getattr(args, setting.name) for setting in fields(TrainingConfig)
                             if training_option(setting.name) is not None})


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the CLI."""
    parser = argparse.ArgumentParser(prog="python -m digitrec",
                                     description="Handwritten digit recognition: train, evaluate, predict.")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a new model folder with its card")
    add_training_options(train)  # --epochs, --no-augment, ...: from TrainingConfig's fields
    train.add_argument("--version", help="folder name (default: mnist-cnn-<UTC time>)")
    train.add_argument("--activate", action="store_true", help="make the new model active")
    train.add_argument("--models-dir", type=Path, help="model directory (default: models/)")
    train.add_argument("--mnist-dir", help="folder of MNIST IDX .gz files (default: $DIGITREC_MNIST_DIR)")
    train.set_defaults(handler=_train)

    prepare = commands.add_parser(
        "prepare", help="write the training and validation arrays the train options describe (for fit)")
    add_training_options(prepare)
    prepare.add_argument("--out", type=Path, required=True, help="the .npz file to write")
    prepare.add_argument("--mnist-dir", help="folder of MNIST IDX .gz files (default: $DIGITREC_MNIST_DIR)")
    prepare.set_defaults(handler=_prepare)

    fit = commands.add_parser(
        "fit", help="train on prepared arrays only, on any Keras backend (a GPU machine without "
                    "TensorFlow: KERAS_BACKEND=torch); adopt the result here")
    add_training_options(fit)
    fit.add_argument("--data", type=Path, required=True, help="arrays written by prepare (same options)")
    fit.add_argument("--out", type=Path, required=True, help="the .keras file to write (and <out>.json)")
    fit.set_defaults(handler=_fit)

    adopt = commands.add_parser(
        "adopt", help="evaluate, save, calibrate and equip a network that fit trained elsewhere")
    adopt.add_argument("model", type=Path, help="the .keras file fit wrote (its .json beside it)")
    adopt.add_argument("--version", help="folder name (default: mnist-cnn-<UTC time>)")
    adopt.add_argument("--models-dir", type=Path, help="model directory (default: models/)")
    adopt.add_argument("--mnist-dir", help="folder of MNIST IDX .gz files (default: $DIGITREC_MNIST_DIR)")
    adopt.set_defaults(handler=_adopt)

    companions = commands.add_parser(
        "companions", help="add the trajectory model, the not-a-digit gate and calibration to a model folder")
    companions.add_argument("folder", type=Path, help="the model folder (its image model stays as it is)")
    companions.add_argument("--epochs", type=int, default=30, help="trajectory model epochs")
    companions.add_argument("--gate-epochs", type=int, default=6)
    companions.add_argument("--seed", type=int, default=1)
    companions.add_argument("--only", choices=["strokes", "gate", "head", "line", "calibration"],
                            help="redo one part (default: all; gate: the gate and its head; head: only "
                                 "the gate's head, for this folder's image model; line: the line model "
                                 "that reads a number as a whole)")
    companions.set_defaults(handler=_companions)

    average = commands.add_parser(
        "average", help="serve several trained image models as one (their logits averaged)")
    average.add_argument("folders", type=Path, nargs="+",
                         help="model folders (2-4)")
    average.add_argument("--companions", type=Path,
                         help="the model folder whose trajectory model and gate to keep (default: the first)")
    average.add_argument("--version", help="folder name (default: mnist-cnn-<UTC time>)")
    average.add_argument("--models-dir", type=Path, help="model directory (default: models/)")
    average.set_defaults(handler=_average)

    split = commands.add_parser("split", help="one net of an averaged model folder as a folder of its own")
    split.add_argument("folder", type=Path, help="an averaged model folder")
    split.add_argument("--net", type=int, required=True, help="which net (0 = the first averaged)")
    split.add_argument("--version", help="folder name (default: the net's own name + -net<N>)")
    split.add_argument("--models-dir", type=Path, help="model directory (default: models/)")
    split.set_defaults(handler=_split)

    evaluate = commands.add_parser("evaluate", help="MNIST test and canvas-drawn pendigits accuracy")
    evaluate.add_argument("--model", type=Path, help="model folder (default: the active model)")
    evaluate.add_argument("--mnist-dir", help="folder of MNIST IDX .gz files (default: $DIGITREC_MNIST_DIR)")
    evaluate.add_argument("--store", action="store_true",
                          help="also store the evaluation in the model folder, for the pages to show at once")
    evaluate.set_defaults(handler=_evaluate)

    predict = commands.add_parser("predict", help="read the digit in image files")
    predict.add_argument("images", nargs="+", help="PNG, JPEG, WebP or BMP files")
    predict.add_argument("--model", type=Path, help="model folder (default: the active model)")
    predict.add_argument("--json", action="store_true", help="print JSON")
    predict.set_defaults(handler=_predict)

    models = commands.add_parser("models", help="list model versions (* = active)")
    models.set_defaults(handler=_models)
    return parser


def main(argv=None) -> int:
    """Run the CLI; user errors print one line and exit non-zero."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (DigitrecError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
