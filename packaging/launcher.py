"""The frozen app's entry: the same CLI (no command opens the window)."""

if __name__ == "__main__":
    from finetune_gui.cli import main

    raise SystemExit(main())
