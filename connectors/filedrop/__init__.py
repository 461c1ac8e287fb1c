"""The ``filedrop`` requester connector: batch files dropped in a folder become inquiries.

A CSV file (header line, one inquiry per row) or an XML file (``<inquiries><inquiry>…``)
matching a rule's pattern is taken once it has stopped changing. Each good row becomes one
inquiry of the rule's service; rows that cannot be are listed with line and reason in
``<file>.errors``, never skipped silently. When every inquiry has its outcome, the result file
``<file>.result.csv`` (or ``.xml``) appears beside the batch, then the ``<file>.done`` marker;
both are written to a temporary name and renamed. A restart mid-file sends no inquiry twice
(ids from the file's hash and the line number) and finishes the file. See
``docs/connectors-builtin.md``.
"""

from connectors.filedrop._config import BatchRule, FiledropConfig, SubjectColumn
from connectors.filedrop._source import FiledropSource

__all__ = ["BatchRule", "FiledropConfig", "FiledropSource", "SubjectColumn"]
