"""Evaluate a trained run on the whole test split: accuracy, per-class accuracy, confusion matrix.

    %(prog)s --train_dir train_dir/digits-frelu-reference_cnn-seed0
    %(prog)s --checkpoint train_dir/RUN/checkpoints/ckpt-00003000.keras --dataset digits

Writes eval.json and confusion.png next to the run, and the confusion matrix to TensorBoard (eval/).
"""

from keras_frelu import cli


def build_parser(prog="evaler.py"):
    parser = cli.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=cli.argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_dir", help="run directory made by the trainer (its newest checkpoint is used)")
    parser.add_argument("--checkpoint", help="a .keras checkpoint to evaluate instead of the newest one")
    parser.add_argument("--dataset", help="dataset name or folder (default: the one the run was trained on)")
    parser.add_argument("--data_dir", help="folder holding the datasets (default: the run's)")
    parser.add_argument("--batch_size", type=cli.positive_int, default=256,
                        help="inference batch size (default: %(default)s)")
    return parser


def main(argv=None, prog="evaler.py"):
    args = build_parser(prog).parse_args(argv)
    from keras_frelu import evaluation

    evaluation.resolve(args.train_dir, args.checkpoint)  # bad flags answer before TensorFlow is loaded
    cli.quiet_tensorflow()
    report = evaluation.evaluate(run_dir=args.train_dir, checkpoint=args.checkpoint, dataset=args.dataset,
                                 data_dir=args.data_dir, batch_size=args.batch_size)
    print(f"{report['dataset']} test split ({report['test_size']} images), step {report['step']}: "
          f"accuracy {report['accuracy']:.4f}, loss {report['loss']:.4f}")
    width = max(len(name) for name in report["class_names"])
    print("per-class accuracy:")
    for name, accuracy in report["per_class_accuracy"].items():
        print(f"  {name:>{width}}  {accuracy:.4f}")
    print("confusion matrix (rows: true class, columns: predicted):")
    for name, row in zip(report["class_names"], report["confusion_matrix"]):
        print(f"  {name:>{width}}  " + " ".join(f"{count:5d}" for count in row))
