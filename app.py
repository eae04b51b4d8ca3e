"""Fair Clustering Lab: entry point. `streamlit run app.py`."""
import streamlit as st
import torch

from dashboard_lib.data import default_data_dir
from dashboard_lib.methods import available_devices
from dashboard_lib.settings import store_dir
from dashboard_lib.state import app_navigation, job_registry, warm_up

st.set_page_config(page_title="Fair Clustering Lab", page_icon=":material/balance:", layout="wide")

pages = [
    st.Page("pages/data.py", title="Data", icon=":material/dataset:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:", default=True),
    st.Page("pages/monitor.py", title="Monitor", icon=":material/monitoring:"),
    st.Page("pages/embeddings.py", title="Embeddings", icon=":material/scatter_plot:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("pages/explain.py", title="Explain", icon=":material/visibility:"),
    st.Page("pages/audit.py", title="Audit", icon=":material/fact_check:"),
]
page = st.navigation(pages)
warm_up()

with st.sidebar:
    st.markdown("**Fair Clustering Lab**: explore bias in clusterings.")
    st.text_input(
        "Data folder", value=str(default_data_dir() or ""), key="data_dir",
        help="Folder searched first for dataset files you downloaded yourself (also FCLAB_DATA_DIR). "
             "Leave empty to use the built-in data and the download cache.",
    )
    registry = job_registry()
    running = registry.running_ids()
    st.caption(f"Devices here: {', '.join(available_devices())} · CPU training threads: {torch.get_num_threads()}")
    st.caption(f"Run store: `{store_dir()}`" + (f" · {len(running)} run(s) training" if running else ""))

with app_navigation():
    page.run()
