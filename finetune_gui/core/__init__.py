"""The Qt-free core: everything the CLI and the window share. Heavy libraries are imported lazily."""
