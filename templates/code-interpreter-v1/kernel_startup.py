# Run by every Python kernel of the Stasis code interpreter at start (IPKernelApp.exec_files).
# Adds the `e2b/data` format the SDKs expose as `Result.data`: a pandas DataFrame's columns.
import sys as _sys

from IPython import get_ipython as _get_ipython
from IPython.core.formatters import BaseFormatter as _BaseFormatter
from traitlets import ObjectName as _ObjectName, Unicode as _Unicode


class _StasisDataFormatter(_BaseFormatter):
    format_type = _Unicode("e2b/data")
    print_method = _ObjectName("_repr_e2b_data_")
    _return_type = (dict, str)

    def __call__(self, obj):
        # Only look at DataFrames, and never import pandas for anyone who has not.
        pandas = _sys.modules.get("pandas")
        if pandas is None or not isinstance(obj, pandas.DataFrame):
            return super().__call__(obj)
        columns = obj.to_dict(orient="list")
        return {str(k): [v.isoformat() if isinstance(v, pandas.Timestamp) else v for v in values] for k, values in columns.items()}


_ip = _get_ipython()
if _ip is not None:
    _ip.display_formatter.formatters["e2b/data"] = _StasisDataFormatter(parent=_ip.display_formatter)
del _ip
