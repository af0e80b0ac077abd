"""`python -m orderflow_ministack`: ministack with orderflow's fixes applied."""

from orderflow_ministack import patches


def main() -> None:
    patches.apply_all()
    from ministack.app import main as serve

    serve()


if __name__ == "__main__":
    main()
