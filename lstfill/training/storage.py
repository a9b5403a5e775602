"""Torch files that load without running code: what lstfill writes into its checkpoints and
resume states, how it reads them back, and what it says about a file that does not load.

Plain `torch.load` (without `weights_only=True`) unpickles arbitrary objects, so a `.pt` file
from anywhere would run code when a job reads it. lstfill's files therefore hold tensors and
plain values only (`plain` turns numpy arrays into tensors, numpy scalars into numbers, paths
into strings and dataclasses into dicts when writing) and are read with torch's restricted
unpickler (`load_plain`). A file that fails to load is examined without unpickling it
(`diagnose`): cut short or damaged (an interrupted copy), written by an older lstfill (numpy
objects inside), or holding objects that would run code.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import pickletools
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Literal

import numpy as np
import torch

from lstfill.errors import LstfillError
from lstfill.io import atomic_output

# What older lstfill versions pickled besides tensors: numpy arrays, scalars and dtypes, paths.
_LEGACY_GLOBALS = re.compile(
    r"numpy\.(_?core\.multiarray\.(_reconstruct|scalar)|ndarray|dtype|dtypes\.\w+)"
    r"|pathlib\.(_local\.)?(Posix|Windows|Pure\w*)?Path"
)
# torch's own tensor machinery, which its restricted unpickler accepts.
_TORCH_GLOBALS = re.compile(
    r"torch\._utils\._rebuild_\w+|torch\._tensor\._rebuild_from_type_v2"
    r"|torch\.(cuda\.)?\w+(Storage|Tensor)|torch\.(Size|Tensor|device)"
    r"|collections\.(OrderedDict|Counter)|builtins\.(set|frozenset|bytearray|complex|slice)"
    r"|_codecs\.encode"
)
_STRING_OPS = {
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "UNICODE",
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
}
_NO_PUSH_OPS = {"MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "PROTO", "FRAME", "STOP", "MARK"}
CHECKPOINT_MARK = "lstfill-checkpoint-"

Kind = Literal["truncated", "legacy", "code", "not-torch"]


@dataclass(frozen=True)
class Diagnosis:
    """Why a torch file did not load: `kind` is "truncated" (cut short or damaged), "legacy"
    (numpy or path objects, as older lstfill versions wrote), "code" (objects whose loading
    would run code) or "not-torch" (not a PyTorch file at all); `detail` says what was found,
    `marked` whether it carries lstfill's checkpoint format string."""

    kind: Kind
    detail: str
    marked: bool = False


class LoadFailure(LstfillError):
    """A torch file that `load_plain` refused, with the reason (`diagnosis`)."""

    def __init__(self, path: Path, diagnosis: Diagnosis) -> None:
        self.path = path
        self.diagnosis = diagnosis
        super().__init__(f"{path}: {diagnosis.kind}: {diagnosis.detail}")


def plain(obj: Any, where: str = "value") -> Any:
    """`obj` with only what `torch.load(weights_only=True)` reads back: tensors (on the CPU),
    numbers, strings, bytes, None, and lists, tuples and dicts of them. numpy arrays become
    tensors, numpy scalars numbers, paths strings, dates ISO strings, enums their values and
    dataclasses dicts; anything else is a TypeError naming `where` (the key path)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "biufc":
            return torch.from_numpy(np.array(obj, dtype=obj.dtype.newbyteorder("=")))
        return plain(obj.tolist(), where)
    if isinstance(obj, np.generic):
        return plain(obj.item(), where)
    if isinstance(obj, enum.Enum):
        return plain(obj.value, where)
    for kind in (bool, int, float, str, bytes):  # also their subclasses, e.g. np.float64
        if isinstance(obj, kind):
            return kind(obj)
    if obj is None or isinstance(obj, torch.dtype):
        return obj
    if isinstance(obj, PurePath | torch.device):
        return str(obj)
    if isinstance(obj, dt.date | dt.time):
        return obj.isoformat()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return plain(dataclasses.asdict(obj), where)
    if isinstance(obj, Mapping):
        return {plain(k, where): plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        items = [plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    if isinstance(obj, set | frozenset):
        return sorted(plain(v, where) for v in obj)
    raise TypeError(
        f"{where}: cannot store a {type(obj).__name__} in an lstfill torch file; give it as "
        "numbers, strings, lists, dicts, numpy arrays or tensors"
    )


def tensors_to_numpy(obj: Any) -> Any:
    """`obj` with every tensor turned back into a numpy array (the inverse of `plain` for the
    parts of a checkpoint that hold no weights)."""
    if isinstance(obj, torch.Tensor):
        return obj.numpy()
    if isinstance(obj, dict):
        return {k: tensors_to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        items = [tensors_to_numpy(v) for v in obj]
        return items if isinstance(obj, list) else tuple(items)
    return obj


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save `plain(obj)` to a temporary file beside `path`, then rename it into place
    (a reader never sees half a file)."""
    content = plain(obj, Path(path).name)
    with atomic_output(path) as tmp:
        torch.save(content, tmp)


def load_plain(path: str | Path) -> Any:
    """What `atomic_save` wrote to `path`, read with torch's restricted unpickler (no code runs).
    A file that does not load raises LoadFailure with its diagnosis."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise LoadFailure(path, diagnose(path, exc)) from exc


def diagnose(path: Path, error: BaseException | None = None) -> Diagnosis:
    """Why the torch file `path` does not load with `weights_only=True`, found by reading its
    zip directory and listing the globals of its pickle (nothing is unpickled)."""
    first = _first_line(error)
    with path.open("rb") as f:
        head = f.read(4)
    if not head:
        return Diagnosis("truncated", "the file is empty")
    if head != b"PK\x03\x04":
        return Diagnosis("not-torch", f"not a PyTorch zip file ({first})")
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if not names:
                return Diagnosis("truncated", "the zip holds no data.pkl record")
            data = archive.read(names[0])
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        return Diagnosis("truncated", f"the zip archive is cut short or damaged ({exc})")
    try:
        found, marked = pickle_globals(data)
    except Exception as exc:  # pickletools raises ValueError and others on a broken stream
        return Diagnosis("truncated", f"its pickle is damaged ({exc})")
    other = sorted(g for g in found if not _torch_global(g))
    if not other:
        return Diagnosis("truncated", f"a record is missing or damaged ({first})")
    if all(_LEGACY_GLOBALS.fullmatch(g) for g in other):
        return Diagnosis("legacy", f"it holds numpy or path objects ({', '.join(other)})", marked)
    return Diagnosis("code", f"it holds objects that loading would run ({', '.join(other)})")


def pickle_globals(data: bytes) -> tuple[set[str], bool]:
    """The globals ("module.name") a pickle refers to, and whether it holds a string starting
    with lstfill's checkpoint format mark; read from its opcodes, never executed. A global whose
    name cannot be followed (built at run time) is listed as "<unresolved>"."""
    found: set[str] = set()
    marked = False
    pushed: list[Any] = []
    memo: dict[int, Any] = {}
    for op, arg, _ in pickletools.genops(data):
        name = op.name
        if name in ("GLOBAL", "INST"):
            found.add(str(arg).replace(" ", "."))
            pushed.append(None)
        elif name == "STACK_GLOBAL":
            module, attr = pushed[-2:] if len(pushed) >= 2 else (None, None)
            ok = isinstance(module, str) and isinstance(attr, str)
            found.add(f"{module}.{attr}" if ok else "<unresolved>")
            pushed.append(None)
        elif name.startswith("EXT"):
            found.add("<unresolved>")
            pushed.append(None)
        elif name in _STRING_OPS:
            value = arg.decode("latin-1") if isinstance(arg, bytes) else arg
            marked = marked or str(value).startswith(CHECKPOINT_MARK)
            pushed.append(value)
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            pushed.append(memo.get(int(arg)))
        elif name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = pushed[-1] if pushed else None
        elif name not in _NO_PUSH_OPS:
            pushed.append(None)
    return found, marked


def _torch_global(name: str) -> bool:
    """Whether `name` is torch machinery the restricted unpickler accepts (tensors, storages,
    dtypes, ordered dicts), as opposed to code."""
    if _TORCH_GLOBALS.fullmatch(name):
        return True
    module, _, attr = name.rpartition(".")
    return module == "torch" and isinstance(getattr(torch, attr, None), torch.dtype)


def _first_line(error: BaseException | None) -> str:
    """The first line of an error message, without torch's advice to load unsafely."""
    if error is None:
        return "no error"
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
