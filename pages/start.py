"""Start: what the lab is for, and three ways in."""
import streamlit as st

from dashboard_lib import lesson
from dashboard_lib.state import ensure_navigation

ensure_navigation()

st.title("Fair Clustering Lab")
st.markdown("Clustering algorithms can split people along a sensitive attribute (sex, source, colour) without being "
            "asked to. This lab trains fair-clustering methods from five papers beside their unfair baselines, and "
            "measures, with exact definitions, how evenly every cluster mixes the groups.")
paths = st.columns(3, gap="large")
with paths[0]:
    st.subheader("See the bias")
    st.markdown(f"A {lesson.STORY_STEPS}-step lesson for a class: k-means sorts the built-in digits by their source "
                "(MNIST or UCI optdigits); a fair method mixes every cluster; optionally, the classic answer. About "
                f"{lesson.LENGTH_MINUTES} minutes on a laptop, runs included.")
    if st.button("Start the lesson", type="primary", icon=":material/school:"):  # the way in for a class: a button
        st.switch_page("pages/lesson.py")
    st.page_link("pages/train.py", label="Or train a method yourself", icon=":material/model_training:")
with paths[1]:
    st.subheader("Audit a clustering")
    st.markdown("Bring assignments made elsewhere (a table with a cluster column and sensitive columns) and get every "
                "fairness metric with its interval and baseline, and a report to hand over.")
    st.page_link("pages/audit.py", label="Audit a clustering", icon=":material/fact_check:")
with paths[2]:
    st.subheader("Reproduce a paper")
    st.markdown("Load the papers' datasets from a data folder (sidebar), pick a method's paper schedule, and compare "
                "runs and methods on quality against fairness.")
    st.page_link("pages/data.py", label="Look at the datasets", icon=":material/dataset:")
    st.page_link("pages/compare.py", label="Compare runs", icon=":material/compare_arrows:")
