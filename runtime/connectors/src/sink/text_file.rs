//! A sink writing records as lines of text files, like Flink's `writeAsText`.

use std::fmt::Display;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use weir_operators::function::FnResult;
use weir_operators::{Collector, OneInputOperator, SubtaskInfo};
use weir_types::Record;

use crate::{Error, Result};

/// Writes each record with `Display` on its own line.
///
/// At parallelism 1 the sink writes the file `path`; above 1, `path` is a directory
/// (created if missing) holding one file per subtask, named `1`, `2`, … `p` (the subtask
/// index from 1), as Flink does. Missing parent directories are created and existing files
/// are overwritten. Output is buffered and flushed in `finish`.
pub struct TextFileSink<T> {
    path: PathBuf,
    /// The file this subtask writes and its writer; set in `open`.
    output: Option<(PathBuf, BufWriter<File>)>,
    _type: PhantomData<fn(T)>,
}

impl<T> TextFileSink<T> {
    /// A sink writing to `path` (a file at parallelism 1, else a directory).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        TextFileSink { path: path.into(), output: None, _type: PhantomData }
    }
}

impl<T> Clone for TextFileSink<T> {
    /// Clones the configuration; the clone has no open file.
    fn clone(&self) -> Self {
        TextFileSink::new(self.path.clone())
    }
}

impl<T> std::fmt::Debug for TextFileSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextFileSink").field("path", &self.path).finish_non_exhaustive()
    }
}

fn create_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|source| Error::Create { path: path.into(), source })
}

/// The file subtask `index` of `parallelism` writes when the sink is given `path`.
fn subtask_file(path: &Path, index: usize, parallelism: usize) -> PathBuf {
    if parallelism > 1 { path.join((index + 1).to_string()) } else { path.to_path_buf() }
}

impl<T: Display> OneInputOperator for TextFileSink<T> {
    type In = T;
    type Out = ();

    fn open(&mut self, info: &SubtaskInfo) -> FnResult {
        let file_path = subtask_file(&self.path, info.index, info.parallelism);
        if info.parallelism > 1 {
            create_dir(&self.path)?;
        } else if let Some(parent) = file_path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_dir(parent)?;
        }
        let file = File::create(&file_path)
            .map_err(|source| Error::Create { path: file_path.clone(), source })?;
        self.output = Some((file_path, BufWriter::new(file)));
        Ok(())
    }

    fn process_batch(&mut self, batch: &mut Vec<Record<T>>, _out: &mut Collector<()>) -> FnResult {
        let (path, writer) = self.output.as_mut().expect("TextFileSink used before open");
        for record in batch.drain(..) {
            writeln!(writer, "{}", record.value)
                .map_err(|source| Error::WriteFile { path: path.clone(), source })?;
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Collector<()>) -> FnResult {
        if let Some((path, mut writer)) = self.output.take() {
            writer.flush().map_err(|source| Error::WriteFile { path: path.clone(), source })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{info, push};

    fn run(sink: &TextFileSink<i32>, index: usize, parallelism: usize, values: Vec<i32>) {
        let mut sink = sink.clone();
        sink.open(&info(index, parallelism)).unwrap();
        push(&mut sink, values).unwrap();
        sink.finish(&mut Collector::default()).unwrap();
    }

    #[test]
    fn parallelism_one_writes_one_file_and_overwrites_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out").join("result.txt");
        let sink = TextFileSink::new(&path);
        run(&sink, 0, 1, vec![1, 2, 3]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n2\n3\n");
        run(&sink, 0, 1, vec![4]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "4\n");
    }

    #[test]
    fn parallel_subtasks_write_numbered_files_in_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let sink = TextFileSink::new(&path);
        for index in 0..3 {
            run(&sink, index, 3, vec![index as i32 * 10, index as i32 * 10 + 1]);
        }
        let mut names: Vec<String> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec!["1", "2", "3"]);
        assert_eq!(std::fs::read_to_string(path.join("1")).unwrap(), "0\n1\n");
        assert_eq!(std::fs::read_to_string(path.join("3")).unwrap(), "20\n21\n");
    }

    #[test]
    fn output_is_buffered_until_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("buffered.txt");
        let mut sink = TextFileSink::new(&path);
        sink.open(&info(0, 1)).unwrap();
        push(&mut sink, vec!["a".to_string()]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        sink.finish(&mut Collector::default()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\n");
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("a-file");
        std::fs::write(&blocker, "").unwrap();
        // A directory cannot be created where a file is.
        let mut sink = TextFileSink::<i32>::new(&blocker);
        let error = sink.open(&info(0, 2)).unwrap_err().to_string();
        assert!(error.contains(&blocker.display().to_string()), "{error}");
        let inside = blocker.join("out.txt");
        let mut sink = TextFileSink::<i32>::new(&inside);
        let error = sink.open(&info(0, 1)).unwrap_err().to_string();
        assert!(error.contains(&blocker.display().to_string()), "{error}");
    }
}
