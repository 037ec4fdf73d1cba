//! Writing and reading single Parquet files.

use crate::WarehouseError;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use datafusion::parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowLeafColumn, ArrowRowGroupWriterFactory, compute_leaves,
};
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::file::writer::SerializedFileWriter;
use std::fs::File;
use std::path::Path;

/// A Parquet file being written under a temporary name; [`ParquetSink::finish`] renames it into
/// place, so a file under its final name is always complete. Each batch becomes one row group
/// whose columns are encoded on threads of their own, so that writing a national month's twenty
/// million rows uses every core.
pub(crate) struct ParquetSink {
    path: std::path::PathBuf,
    tmp: std::path::PathBuf,
    writer: SerializedFileWriter<File>,
    columns: ArrowRowGroupWriterFactory,
    row_groups: usize,
    rows: u64,
}

/// Batches smaller than this are encoded on the calling thread: threads would cost more.
const PARALLEL_ROWS: usize = 65_536;

impl ParquetSink {
    /// Starts a file.
    pub(crate) fn create(path: &Path, schema: SchemaRef) -> Result<Self, WarehouseError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| WarehouseError::io(dir, e))?;
        }
        let tmp = path.with_extension("parquet.tmp");
        let file = File::create(&tmp).map_err(|e| WarehouseError::io(&tmp, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(1 << 20))
            .build();
        // Made through ArrowWriter so that the file carries the Arrow schema, as before.
        let (writer, columns) = ArrowWriter::try_new(file, schema, Some(props))
            .and_then(ArrowWriter::into_serialized_writer)
            .map_err(|e| WarehouseError::parquet(&tmp, e))?;
        Ok(Self { path: path.to_path_buf(), tmp, writer, columns, row_groups: 0, rows: 0 })
    }

    /// Appends a batch as one row group.
    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<(), WarehouseError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let err = |e| WarehouseError::parquet(&self.tmp, e);
        let writers = self.columns.create_column_writers(self.row_groups).map_err(err)?;
        let mut leaves = Vec::new();
        for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
            leaves.extend(compute_leaves(field, array).map_err(err)?);
        }
        let encode = |(mut writer, leaf): (ArrowColumnWriter, ArrowLeafColumn)| {
            writer.write(&leaf)?;
            writer.close()
        };
        let jobs = writers.into_iter().zip(leaves);
        let chunks: Vec<ArrowColumnChunk> = if batch.num_rows() < PARALLEL_ROWS {
            jobs.map(encode).collect::<Result<_, _>>().map_err(err)?
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = jobs.map(|job| s.spawn(move || encode(job))).collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(err)?
        };
        let mut group = self.writer.next_row_group().map_err(err)?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut group).map_err(err)?;
        }
        group.close().map_err(err)?;
        self.row_groups += 1;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Writes the footer, syncs and renames into place; returns the rows written.
    pub(crate) fn finish(self) -> Result<u64, WarehouseError> {
        let file = self.writer.into_inner().map_err(|e| WarehouseError::parquet(&self.tmp, e))?;
        file.sync_all().map_err(|e| WarehouseError::io(&self.tmp, e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| WarehouseError::io(&self.path, e))?;
        Ok(self.rows)
    }
}

/// Writes batches to a new file at `path`.
pub(crate) fn write_parquet(
    path: &Path,
    schema: SchemaRef,
    batches: impl IntoIterator<Item = RecordBatch>,
) -> Result<u64, WarehouseError> {
    let mut sink = ParquetSink::create(path, schema)?;
    for b in batches {
        sink.write(&b)?;
    }
    sink.finish()
}

/// Reads a whole Parquet file (used for the small reference tables a load rebuilds).
pub(crate) fn read_parquet(path: &Path) -> Result<Vec<RecordBatch>, WarehouseError> {
    let file = File::open(path).map_err(|e| WarehouseError::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| WarehouseError::parquet(path, e))?
        .with_batch_size(65_536)
        .build()
        .map_err(|e| WarehouseError::parquet(path, e))?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| WarehouseError::Corrupt { path: path.display().to_string(), detail: e.to_string() })
}

/// Reads only the named columns of a Parquet file (in the file's order), so that a large table
/// can be counted without decoding what is not needed.
pub(crate) fn read_parquet_columns(path: &Path, columns: &[&str]) -> Result<Vec<RecordBatch>, WarehouseError> {
    let file = File::open(path).map_err(|e| WarehouseError::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| WarehouseError::parquet(path, e))?;
    let mask = datafusion::parquet::arrow::ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
    let reader =
        builder.with_projection(mask).with_batch_size(65_536).build().map_err(|e| WarehouseError::parquet(path, e))?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| WarehouseError::Corrupt { path: path.display().to_string(), detail: e.to_string() })
}

/// A reader of the named columns of a Parquet file (in the file's order), a batch at a time,
/// with the text columns named in `as_dictionary` handed over dictionary-encoded as they are
/// stored: a column of a few thousand distinct codes over millions of rows is then neither
/// copied out string by string nor held whole, which is most of what loading a large table
/// for the dashboard costs.
pub(crate) fn read_parquet_dictionary(
    path: &Path,
    columns: &[&str],
    as_dictionary: &[&str],
) -> Result<ParquetRecordBatchReader, WarehouseError> {
    let builder = dictionary_builder(path, |_, f| {
        f.data_type() == &DataType::Utf8 && as_dictionary.contains(&f.name().as_str())
    })?;
    let mask = datafusion::parquet::arrow::ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
    builder.with_projection(mask).with_batch_size(65_536).build().map_err(|e| WarehouseError::parquet(path, e))
}

/// A reader builder for a Parquet file that reads the stored fields `text(position, field)`
/// picks as dictionaries of text (keys `Int32`) and every other field as stored. The footer is
/// parsed once, for both the stored schema and the reader.
pub(crate) fn dictionary_builder(
    path: &Path,
    text: impl Fn(usize, &Field) -> bool,
) -> Result<ParquetRecordBatchReaderBuilder<File>, WarehouseError> {
    let parquet = |e| WarehouseError::parquet(path, e);
    let file = File::open(path).map_err(|e| WarehouseError::io(path, e))?;
    let stored = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(parquet)?;
    let fields: Vec<Field> = stored
        .schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if text(i, f) {
                Field::new(
                    f.name(),
                    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                    f.is_nullable(),
                )
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    let options = ArrowReaderOptions::new().with_schema(std::sync::Arc::new(Schema::new(fields)));
    let metadata = ArrowReaderMetadata::try_new(stored.metadata().clone(), options).map_err(parquet)?;
    Ok(ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata))
}

/// Every batch of a table as `manifest` lists it (all partitions, in partition order).
pub(crate) fn read_table(
    root: &Path,
    manifest: &crate::Manifest,
    table: &str,
) -> Result<Vec<RecordBatch>, WarehouseError> {
    let mut out = Vec::new();
    for rel in manifest.files(table) {
        out.extend(read_parquet(&root.join(rel))?);
    }
    Ok(out)
}
