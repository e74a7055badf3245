//! `crdgen`: prints the StreamJob CustomResourceDefinition as YAML (`crds/streamjob.yaml`).

fn main() -> anyhow::Result<()> {
    print!("{}", weir_operator::crd::crd_yaml()?);
    Ok(())
}
