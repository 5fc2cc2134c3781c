"""The plugin template is not a plugin: its files are copied and renamed by
``gateway plugin new``, so pytest must not collect them here."""

collect_ignore_glob = ["*"]
