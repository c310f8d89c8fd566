"""The CSV import of existing members from a POS or CRM export.

* ``rows``: the file's encoding and header, each row validated into a COPY line;
* ``sql``: the staging table and the set-based statements that merge a batch;
* ``run``: recording an import and running it batch by batch, with progress.
"""

from members.imports.rows import ImportError_, sniff
from members.imports.run import (
    create_import,
    import_file,
    receive_upload,
    run_import,
    upload_dir,
)

__all__ = [
    "ImportError_",
    "create_import",
    "import_file",
    "receive_upload",
    "run_import",
    "sniff",
    "upload_dir",
]
