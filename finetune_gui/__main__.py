# The guard matters: a spawned child process imports this module and must not open a second window.
if __name__ == "__main__":
    from finetune_gui.cli import main

    raise SystemExit(main())
