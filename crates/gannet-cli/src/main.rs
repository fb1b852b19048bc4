fn main() -> anyhow::Result<()> {
    gannet::autodiff::enable_second_order();
    Ok(())
}
