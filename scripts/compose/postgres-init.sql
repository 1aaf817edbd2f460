CREATE DATABASE accounting;
CREATE DATABASE monitoring;
