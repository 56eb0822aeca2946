"""python -m tinygrad_lite.viz --gpt graph.svg: a small GPT's graph and its backward table."""

import argparse

from . import draw_gpt


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tinygrad_lite.viz",
        description="Draw a small GPT's autograd graph and print a table of its backward pass.")
    parser.add_argument("--gpt", metavar="PATH", required=True,
                        help="where to write the picture (.svg, .png or .pdf)")
    parser.add_argument("--blocks", type=int, default=2, help="Transformer blocks (default 2)")
    parser.add_argument("--d-model", type=int, default=16, help="model width (default 16)")
    parser.add_argument("--engine", default="auto", choices=("auto", "dot", "matplotlib"))
    args = parser.parse_args(argv)
    walk = draw_gpt(args.gpt, num_blocks=args.blocks, d_model=args.d_model, engine=args.engine)
    print(walk.table())
    print(f"graph written to {args.gpt}")


if __name__ == "__main__":
    main()
